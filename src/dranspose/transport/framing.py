"""Ingester -> worker framing (PROTOCOLS §0.2).

A message is ``[header_json, *frames]`` where the header is compact JSON
``{"event_number": n, "streams": {name: {"typ": t, "length": k}}, "created_at": iso,
"mapping": uuid}`` and the frames of each stream follow in the order of ``streams``
(``length`` frames each). ``mapping`` is our addition (absent from other ingesters: then the
current mapping is assumed). Frames are passed through untouched (``zmq.Frame``, zero-copy).
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any, Sequence

import zmq

from dranspose.errors import ProtocolError
from dranspose.event import StreamData, construct
from dranspose.transport.jsonio import loads_json


MAX_HEADER_BYTES = 64 * 1024


@functools.lru_cache(maxsize=1024)
def _stream_entry(name: str, typ: str) -> str:
    return f"{json.dumps(name)}:{{\"typ\":{json.dumps(typ)},\"length\":"


@functools.lru_cache(maxsize=64)
def _mapping_field(mapping: str | None) -> str:
    return "" if mapping is None else f",\"mapping\":{json.dumps(mapping)}"


def now_iso() -> str:
    """The current UTC time as the headers' ``created_at`` (ISO 8601, ``Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()[:-6] + "Z"


@functools.lru_cache(maxsize=64)
def _header_tail(streams: tuple[tuple[str, str, int], ...], mapping: str | None, created_at: str) -> bytes:
    """Everything of a header after its event number (the same for the events of one burst)."""
    body = ",".join(f"{_stream_entry(name, typ)}{int(length)}}}" for name, typ, length in streams)
    return f',"streams":{{{body}}},"created_at":"{created_at}"{_mapping_field(mapping)}}}'.encode()


def encode_header(
    event_number: int, streams: Sequence[tuple[str, str, int]], mapping: str | None, created_at: str | None = None
) -> bytes:
    """Header for ``streams`` given as (name, typ, number of frames); compact JSON. This runs
    once per frame in the ingester: the part after the event number is built once per burst
    (``created_at``, from :func:`now_iso`, is shared by the events of one burst; default: now)."""
    return b'{"event_number":%d%s' % (int(event_number), _header_tail(tuple(streams), mapping, created_at or now_iso()))


def frames_declared(header: Any) -> int:
    """Frames that follow ``header`` (a decoded header dict); raises ValueError/KeyError/TypeError."""
    if not isinstance(header, dict) or not isinstance(header["streams"], dict):
        raise TypeError("header is not an object with streams")
    return sum(int(info["length"]) for info in header["streams"].values())


def decode_all(parts: Sequence[Any]) -> list[tuple[int, str | None, dict[str, StreamData], str | None]]:
    """Every event of a received message: a single one or a batch (transport/batching).
    Frames of a packed batch become ``zmq.Frame`` copies (COMPAT: live frames are zmq.Frame)."""
    from dranspose.transport import batching

    if not parts or not batching.is_batch(parts[0]):
        return [decode(parts)]
    return [decode(single, header) for header, single in batching.split_parsed(parts, frames_declared)]


def _as_frame(frame: Any) -> Any:
    return zmq.Frame(frame) if isinstance(frame, memoryview) else frame


def decode(parts: Sequence[Any], header: Any = None) -> tuple[int, str | None, dict[str, StreamData], str | None]:
    """Split a received message into (event number, mapping, streams, created_at); ``header``
    is the already parsed header of a batched message (``parts[0]`` is then not read).

    Raises ProtocolError when the header is not valid JSON of the expected shape or the frame
    count does not match the declared lengths."""
    if not parts:
        raise ProtocolError("empty message from ingester")
    raw = b"" if header is not None else parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"ingester header of {len(raw)} bytes (limit {MAX_HEADER_BYTES})")
    try:
        if header is None:
            header = loads_json(raw)
        if not isinstance(header, dict):
            raise TypeError("not an object")
        event_number = header["event_number"]
        if type(event_number) is not int or event_number < 0:
            raise TypeError(f"event_number is {event_number!r}")
        declared = header["streams"]
        if not isinstance(declared, dict):
            raise TypeError("streams is not an object")
        for key in ("mapping", "created_at"):
            if not isinstance(header.get(key), (str, type(None))):
                raise TypeError(f"{key} is {header[key]!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        shown = raw[:80] if raw else repr(header)[:80]
        raise ProtocolError(f"bad ingester header {shown!r}: {exc}") from None
    streams: dict[str, StreamData] = {}
    pos = 1
    for name, info in declared.items():
        try:
            length, typ = info["length"], info["typ"]
            if type(length) is not int or not isinstance(typ, str):
                raise TypeError(f"length {length!r}, typ {typ!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"event {event_number}: bad stream entry {name!r}: {exc}") from None
        if length < 0 or pos + length > len(parts):
            raise ProtocolError(
                f"event {event_number}: stream {name!r} declares {length} frames, message has {len(parts) - pos} left"
            )
        streams[name] = construct(StreamData, typ=typ, frames=[_as_frame(f) for f in parts[pos : pos + length]])
        pos += length
    if pos != len(parts):
        raise ProtocolError(f"event {event_number}: {len(parts) - pos} frames beyond the declared streams")
    return event_number, header.get("mapping"), streams, header.get("created_at")
