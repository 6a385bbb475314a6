"""Reference twin of ``_fastpath.eventframes`` (same contract, see there): a model instance
built without its constructor, and the events of a received batch."""

from __future__ import annotations

from typing import Any

_set = object.__setattr__


def build(cls: type[Any], values: dict[str, Any]) -> Any:
    if not isinstance(cls, type):
        raise TypeError(f"expected a class, got {type(cls).__name__}")
    if type(values) is not dict:
        raise TypeError(f"expected dict, got {type(values).__name__}")
    m = cls.__new__(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(values))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def _checked_header(header: Any) -> tuple[int, str | None, dict[str, Any], str | None]:
    try:
        if not isinstance(header, dict):
            raise TypeError("not an object")
        event_number = header["event_number"]
        if type(event_number) is not int or event_number < 0:
            raise TypeError(f"event_number is {event_number!r}")
        declared = header["streams"]
        if not isinstance(declared, dict):
            raise TypeError("streams is not an object")
        mapping, created = header.get("mapping"), header.get("created_at")
        if not isinstance(mapping, (str, type(None))):
            raise TypeError(f"mapping is {mapping!r}")
        if not isinstance(created, (str, type(None))):
            raise TypeError(f"created_at is {created!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ValueError(f"bad ingester header {repr(header)[:80]!r}: {exc}") from None
    return event_number, mapping, declared, created


def split_events(
    headers: list[Any], frames: list[Any], stream_cls: type[Any], frame_cls: type[Any]
) -> list[tuple[int, str | None, dict[str, Any], str | None]]:
    if type(headers) is not list or type(frames) is not list:
        raise TypeError("headers and frames must be lists")
    out: list[tuple[int, str | None, dict[str, Any], str | None]] = []
    pos, n = 0, len(frames)
    for header in headers:
        event_number, mapping, declared, created = _checked_header(header)
        streams: dict[str, Any] = {}
        for name, info in declared.items():
            try:
                length, typ = info["length"], info["typ"]
                if type(length) is not int or not isinstance(typ, str):
                    raise TypeError(f"length {length!r}, typ {typ!r}")
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"event {event_number}: bad stream entry {name!r}: {exc}") from None
            if length < 0 or length > n - pos:
                raise ValueError(f"event {event_number}: stream {name!r} declares {length} frames, message has {n - pos} left")
            mine = [frame_cls(f) if isinstance(f, memoryview) else f for f in frames[pos : pos + length]]
            streams[name] = build(stream_cls, {"typ": typ, "frames": mine})
            pos += length
        out.append((event_number, mapping, streams, created))
    if pos != n:
        raise ValueError(f"batch declares {pos} frames, message has {n}")
    return out
