"""Ingester -> worker framing (PROTOCOLS §0.2).

A message is ``[header_json, *frames]`` where the header is compact JSON
``{"event_number": n, "streams": {name: {"typ": t, "length": k}}, "created_at": iso,
"mapping": uuid, "whole": true}`` and the frames of each stream follow in the order of
``streams`` (``length`` frames each). ``mapping`` and ``whole`` are our additions (absent from
other ingesters: then the current mapping is assumed, and the event waits for the worker's
own copy of its assignment). ``whole`` (a boolean) says that these streams are all the worker
gets of the event: it may process the event before its assignment reaches it. Frames are passed
through untouched (``zmq.Frame``, zero-copy).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any, Callable, Sequence

import zmq

from dranspose.backend import split_events
from dranspose.errors import ProtocolError
from dranspose.event import StreamData, builds_fast, construct
from dranspose.transport import batching
from dranspose.transport.jsonio import loads_json


MAX_HEADER_BYTES = 64 * 1024
_SPLIT_FAST = builds_fast(StreamData)  # a batch's events built in one call (dranspose.backend)


@functools.lru_cache(maxsize=1024)
def _stream_entry(name: str, typ: str) -> str:
    return f"{json.dumps(name)}:{{\"typ\":{json.dumps(typ)},\"length\":"


@functools.lru_cache(maxsize=64)
def _mapping_field(mapping: str | None) -> str:
    return "" if mapping is None else f",\"mapping\":{json.dumps(mapping)}"


_WHOLE_FIELD = ',"whole":true'


@functools.lru_cache(maxsize=1)
def _minute_prefix(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of the minute starting at ``minute`` (seconds since the epoch)."""
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute))


def now_iso(at: float | None = None) -> str:
    """``at`` (seconds since the epoch, as ``time.time()``; default: now) as the headers'
    ``created_at``: ISO 8601 UTC with microseconds and ``Z``. The date and time up to the
    minute are formatted once per minute (this runs once per read pass of an ingester, where
    ``datetime`` formatting took ~70 us after the process idled with cold caches)."""
    sec, us = divmod(round((time.time() if at is None else at) * 1_000_000), 1_000_000)
    minute = sec - sec % 60
    return "%s%02d.%06dZ" % (_minute_prefix(minute), sec - minute, us)


@functools.lru_cache(maxsize=64)
def header_parts(streams: tuple[tuple[str, str, int], ...], mapping: str | None, whole: bool = False) -> tuple[bytes, bytes]:
    """A header's JSON around its ``created_at`` value, after the event number (for
    :func:`fill_header`; a caller sending many events of one stream set keeps them).
    ``whole``: the streams are all the receiving worker gets of the event."""
    body = ",".join(f"{_stream_entry(name, typ)}{int(length)}}}" for name, typ, length in streams)
    tail = f'"{_mapping_field(mapping)}{_WHOLE_FIELD if whole else ""}}}'
    return f',"streams":{{{body}}},"created_at":"'.encode(), tail.encode()


def fill_header(event_number: int, parts: tuple[bytes, bytes], created_at: str) -> bytes:
    """The header of ``event_number`` from :func:`header_parts` and an ISO 8601 ``created_at``."""
    return b'{"event_number":%d%s%s%s' % (event_number, parts[0], created_at.encode(), parts[1])


def encode_header(
    event_number: int, streams: Sequence[tuple[str, str, int]], mapping: str | None, created_at: str | None = None,
    whole: bool = False,
) -> bytes:
    """Header for ``streams`` given as (name, typ, number of frames); compact JSON. The JSON
    around the event number and ``created_at`` (an ISO 8601 string from :func:`now_iso`;
    default: now) is built once per stream set."""
    return fill_header(int(event_number), header_parts(tuple(streams), mapping, whole), created_at or now_iso())


# (event number, mapping, streams, created_at, whole: the streams are all the worker gets of the event)
Decoded = tuple[int, "str | None", dict[str, StreamData], "str | None", bool]


def decode_all(parts: Sequence[Any]) -> list[Decoded]:
    """Every event of a received message: a single one or a batch (transport/batching).
    Frames of a packed batch become ``zmq.Frame`` copies (COMPAT: live frames are zmq.Frame).
    Raises ProtocolError for the whole message when any part of it is malformed."""
    if not parts or not batching.is_batch(parts[0]):
        return [decode(parts)]
    headers, frames = batching.parse_batch(parts)
    if _SPLIT_FAST:
        try:
            return split_events(headers, frames, StreamData, zmq.Frame)
        except ValueError as exc:  # the checks and messages of split_checked
            raise ProtocolError(str(exc)) from None
    return split_checked(headers, frames)


def _stream(typ: str, frames: list[Any]) -> StreamData:
    return construct(StreamData, typ=typ, frames=frames)


def split_checked(
    headers: list[Any], frames: list[Any], make_stream: Callable[[str, list[Any]], Any] = _stream, frame_cls: Any = zmq.Frame
) -> list[Decoded]:
    """Every event of a batch from its parsed headers and its frames after the header frame:
    each header checked as a single message's, its frames taken in order (a memoryview becomes
    ``frame_cls(view)``), each stream made by ``make_stream(typ, frames)``. Raises
    ProtocolError. The Python form of ``dranspose.backend.split_events`` (whose reference twin
    calls it)."""
    out: list[Decoded] = []
    pos = 0
    for header in headers:
        event_number, mapping, declared, created, whole = _checked_header(header, b"")
        streams, pos = _take_streams(event_number, declared, frames, pos, make_stream, frame_cls)
        out.append((event_number, mapping, streams, created, whole))
    if pos != len(frames):
        raise ProtocolError(f"batch declares {pos} frames, message has {len(frames)}")
    return out


def _checked_header(header: Any, raw: bytes) -> tuple[int, str | None, dict[str, Any], str | None, bool]:
    """(event number, mapping, declared streams, created_at, whole) of a parsed header; ``raw``
    is its text for the error (empty for a batch's header). Raises ProtocolError."""
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
        whole = header.get("whole", False)
        if type(whole) is not bool:
            raise TypeError(f"whole is {whole!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        shown = raw[:80] if raw else repr(header)[:80]
        raise ProtocolError(f"bad ingester header {shown!r}: {exc}") from None
    return event_number, mapping, declared, created, whole


def _take_streams(
    event_number: int,
    declared: dict[str, Any],
    frames: Sequence[Any],
    pos: int,
    make_stream: Callable[[str, list[Any]], Any] = _stream,
    frame_cls: Any = zmq.Frame,
) -> tuple[dict[str, Any], int]:
    """The declared streams' frames from ``frames[pos:]`` in order; returns them and the new
    position. Raises ProtocolError for a bad entry or too few frames."""
    streams: dict[str, Any] = {}
    n = len(frames)
    for name, info in declared.items():
        try:
            length, typ = info["length"], info["typ"]
            if type(length) is not int or not isinstance(typ, str):
                raise TypeError(f"length {length!r}, typ {typ!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"event {event_number}: bad stream entry {name!r}: {exc}") from None
        if length < 0 or pos + length > n:
            raise ProtocolError(f"event {event_number}: stream {name!r} declares {length} frames, message has {n - pos} left")
        streams[name] = make_stream(typ, [frame_cls(f) if isinstance(f, memoryview) else f for f in frames[pos : pos + length]])
        pos += length
    return streams, pos


def decode(parts: Sequence[Any]) -> Decoded:
    """Split a received single-event message into (event number, mapping, streams, created_at,
    whole).

    Raises ProtocolError when the header is not valid JSON of the expected shape or the frame
    count does not match the declared lengths."""
    if not parts:
        raise ProtocolError("empty message from ingester")
    raw = parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"ingester header of {len(raw)} bytes (limit {MAX_HEADER_BYTES})")
    try:
        header = loads_json(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"bad ingester header {raw[:80]!r}: {exc}") from None
    event_number, mapping, declared, created, whole = _checked_header(header, raw)
    streams, pos = _take_streams(event_number, declared, parts, 1)
    if pos != len(parts):
        raise ProtocolError(f"event {event_number}: {len(parts) - pos} frames beyond the declared streams")
    return event_number, mapping, streams, created, whole
