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


def split_events(
    headers: list[Any], frames: list[Any], stream_cls: type[Any], frame_cls: type[Any]
) -> list[tuple[int, str | None, dict[str, Any], str | None, bool]]:
    """The Python loop the worker takes without the compiled backend
    (:func:`dranspose.transport.framing.split_checked`), its streams made by :func:`build`."""
    from dranspose.transport.framing import split_checked  # framing imports the backend

    if type(headers) is not list or type(frames) is not list:
        raise TypeError("headers and frames must be lists")
    return split_checked(headers, frames, lambda typ, mine: build(stream_cls, {"typ": typ, "frames": mine}), frame_cls)
