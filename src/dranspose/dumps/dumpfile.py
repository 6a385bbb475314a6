"""Ingester dumps and raw captures on disk (PROTOCOLS §0.3): read and write.

Dump item: ``tag55799(tag42877([event_number, {stream: tag42878([typ, [frame, ...]])}, created_at?]))``;
the 2-element form (no ``created_at``) and items without tag 55799 are read too, plain or gzip
(detected by content), and old ``.pkls`` dumps (sequential pickles of InternalWorkerMessage)
through the restricted unpickler. Raw capture item: an array of byte strings, one per ZeroMQ part.

Readers are generators: everything before a truncated or corrupt item is yielded, then
:class:`DumpError` (a :class:`ProtocolError`) is raised naming the file and the byte offset of the
bad item (offsets count uncompressed bytes for ``.gz``). Frames read from files are ``bytes``
owned by the caller. Works with every cbor2 release of the pinned range (5.6.1 to 6.x; no
``tag_hook``: tags arrive as ``CBORTag``); tests/compat/test_cbor2_releases.py checks each.

Writers never copy payloads: :func:`encode_dump_item` returns a list of chunks (small CBOR heads
plus the frames' own buffers) for the caller to write in order.
"""

from __future__ import annotations

import datetime
import gzip
import io
import logging
import os
import pickle
import struct
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence, Union

import cbor2
import zmq

from dranspose.errors import ProtocolError, UnpicklingRefused
from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.protocol import EventNumber, StreamName
from dranspose.pickle_ops import PickleMalformed, PickleTruncated, check_memo
from dranspose.safe_pickle import PLAIN_DATA, compile_allow, restricted_loads

log = logging.getLogger(__name__)

TAG_SELF_DESCRIBE = 55799
TAG_MESSAGE = 42877
TAG_STREAM = 42878

#: Globals an old ``.pkls`` dump or a pickled parameter file may reference.
DRANSPOSE_PICKLE_ALLOW = compile_allow(
    PLAIN_DATA
    | {
        "dranspose.event:InternalWorkerMessage",
        "dranspose.event:StreamData",
        "dranspose.event:EventData",
        "dranspose.event:ResultData",
        "dranspose.protocol:WorkParameter",
        "dranspose.protocol:VirtualWorker",
        "dranspose.parameters:StrParameter",
        "dranspose.parameters:FileParameter",
        "dranspose.parameters:IntParameter",
        "dranspose.parameters:FloatParameter",
        "dranspose.parameters:BoolParameter",
        "dranspose.parameters:BinaryParameter",
        "dranspose.parameters:ParameterBase",
    }
)

Frame = Union[zmq.Frame, bytes, bytearray, memoryview]


class DumpError(ProtocolError):
    """A dump or capture file is truncated or corrupt; ``path`` and ``offset`` say where."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: {reason} at byte offset {offset}")
        self.path = path
        self.offset = offset
        self.reason = reason


class CountingReader(io.RawIOBase):
    """A non-seekable reader counting bytes consumed (cbor2 then reads only what it needs)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.offset = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int | None = -1) -> bytes:
        data = self._raw.read(-1 if n is None else n)
        self.offset += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        data = self._raw.readline(-1 if size is None else size)
        self.offset += len(data)
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for reading, transparently gunzipping when it starts with the gzip magic."""
    f = io.BufferedReader(io.FileIO(path, "rb"), buffer_size=1 << 20)
    if f.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def _peek_first_byte(path: str | os.PathLike[str]) -> bytes:
    with open_binary(path) as f:
        return f.read(1)


def _decoder(reader: CountingReader) -> Any:
    """A decoder that reads no further than the item it decodes: cbor2 5.8 reads ahead 4096
    bytes by default (and loses them between items: agronholm/cbor2#272); ``read_size=1``
    turns that off where the option exists (5.8 and later), older releases never read ahead."""
    try:
        return cbor2.CBORDecoder(reader, read_size=1)  # type: ignore[arg-type, call-arg]
    except TypeError:
        return cbor2.CBORDecoder(reader)  # type: ignore[arg-type]


def _iter_cbor(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield ``(offset, item)`` for every CBOR item; DumpError at the first bad one."""
    name = os.fspath(path)
    with open_binary(path) as raw:
        reader = CountingReader(raw)
        decoder = _decoder(reader)
        while True:
            start = reader.offset
            try:
                item = decoder.decode()
            except cbor2.CBORDecodeEOF as exc:
                if reader.offset == start:
                    return  # clean end of file
                raise DumpError(name, start, f"truncated item ({reader.offset - start} bytes present)") from exc
            except (cbor2.CBORDecodeError, EOFError, OSError, ValueError) as exc:
                cause = exc.__cause__ or exc.__context__
                detail = f"{exc}: {cause}" if cause is not None and str(cause) not in str(exc) else str(exc)
                if isinstance(exc, EOFError) or isinstance(cause, EOFError):  # e.g. a cut .gz
                    raise DumpError(name, start, f"truncated item ({detail})") from exc
                raise DumpError(name, start, f"corrupt item ({detail})") from exc
            yield start, item


def _untag(obj: Any, tag: int) -> Any:
    """The value of ``tag(value)``; the self-describe tag 55799 may wrap it (cbor2 strips it)."""
    while isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SELF_DESCRIBE:
        obj = obj.value
    if isinstance(obj, cbor2.CBORTag) and obj.tag == tag:
        return obj.value
    raise ValueError(f"expected tag {tag}, found {type(obj).__name__}")


def _to_datetime(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if isinstance(value, cbor2.CBORTag) and value.tag == 0 and isinstance(value.value, str):
        return datetime.datetime.fromisoformat(value.value.replace("Z", "+00:00"))
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def item_to_message(item: Any) -> InternalWorkerMessage:
    """Convert one decoded dump item; ValueError when it is not a dump item."""
    body = _untag(item, TAG_MESSAGE)
    if not isinstance(body, (list, tuple)) or len(body) not in (2, 3):
        raise ValueError("dump item is not a 2- or 3-element array")
    event_number, streams_in = body[0], body[1]
    if isinstance(event_number, bool) or not isinstance(event_number, int) or event_number < 0:
        raise ValueError(f"bad event number {event_number!r}")
    if not isinstance(streams_in, Mapping):  # dict (cbor2 5) or frozendict (cbor2 6)
        raise ValueError("streams are not a map")
    streams: dict[StreamName, StreamData] = {}
    for name, tagged in streams_in.items():
        sd = _untag(tagged, TAG_STREAM)
        if not isinstance(name, str) or not isinstance(sd, (list, tuple)) or len(sd) != 2:
            raise ValueError(f"stream {name!r} is not [typ, frames]")
        typ, frames = sd
        if not isinstance(typ, str) or not isinstance(frames, (list, tuple)):
            raise ValueError(f"stream {name!r} has a bad typ or frame list")
        for f in frames:
            if type(f) is not bytes:
                raise ValueError(f"stream {name!r} has a frame that is not a byte string")
        streams[StreamName(name)] = StreamData.model_construct(typ=typ, frames=list(frames))
    created = _to_datetime(body[2]) if len(body) == 3 else None
    return InternalWorkerMessage.model_construct(
        event_number=EventNumber(event_number), streams=streams, created_at=created or _now()
    )


def _as_bytes(frame: Any) -> bytes:
    return frame.bytes if isinstance(frame, zmq.Frame) else bytes(frame)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _split_pickles(raw: IO[bytes], name: str) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(offset, pickle bytes)`` for each pickle in ``raw``, found by walking opcodes
    (:func:`check_memo`: hostile memo indices refused before unpickling). The view is valid
    until the next iteration; memory held is one pickle plus one read chunk."""
    buf = bytearray()
    offset = 0
    while True:
        try:
            end = check_memo(buf) if buf else None
        except PickleTruncated:
            end = None
        except (UnpicklingRefused, PickleMalformed) as exc:
            raise DumpError(name, offset, f"corrupt or refused pickle ({exc})") from exc
        if end is None:
            chunk = raw.read(max(1 << 16, len(buf)))
            if chunk:
                buf += chunk
                continue
            if buf:
                raise DumpError(name, offset, "truncated pickle")
            return
        with memoryview(buf) as view:
            yield offset, view[:end]
        del buf[:end]
        offset += end


def _iter_pickles(path: str | os.PathLike[str]) -> Iterator[InternalWorkerMessage]:
    name = os.fspath(path)
    with open_binary(path) as raw:
        for start, data in _split_pickles(raw, name):
            try:
                obj = restricted_loads(data, DRANSPOSE_PICKLE_ALLOW)
            except Exception as exc:  # corrupt pickles raise many types; all become DumpError
                raise DumpError(name, start, f"corrupt or refused pickle ({exc})") from exc
            finally:
                data.release()
            if not isinstance(obj, InternalWorkerMessage):
                raise DumpError(name, start, f"pickle holds {type(obj).__name__}, not InternalWorkerMessage")
            streams = {
                StreamName(k): StreamData.model_construct(typ=s.typ, frames=[_as_bytes(f) for f in s.frames])
                for k, s in obj.streams.items()
            }
            yield InternalWorkerMessage.model_construct(
                event_number=obj.event_number, streams=streams, created_at=getattr(obj, "created_at", None) or _now()
            )


def read_dump(path: str | os.PathLike[str]) -> Iterator[InternalWorkerMessage]:
    """Yield the partial events of an ingester dump (CBOR or ``.pkls``, plain or gzip)."""
    if _peek_first_byte(path) == b"\x80":  # pickle protocol >= 2; never a dump's first CBOR byte
        yield from _iter_pickles(path)
        return
    name = os.fspath(path)
    for offset, item in _iter_cbor(path):
        try:
            msg = item_to_message(item)
        except ValueError as exc:
            hint = "; this is a raw capture: stream it with 'dranspose source play'" if _as_parts(item) else ""
            raise DumpError(name, offset, f"not a dump item ({exc}{hint})") from None
        yield msg


def _as_parts(item: Any) -> list[bytes] | None:
    if isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and all(isinstance(p, bytes) for p in item):
        return list(item)
    return None


def read_capture(path: str | os.PathLike[str]) -> Iterator[list[bytes]]:
    """Yield the multipart messages of a raw capture (CBOR arrays of byte strings)."""
    name = os.fspath(path)
    for offset, item in _iter_cbor(path):
        parts = _as_parts(item)
        if parts is None:
            raise DumpError(name, offset, "item is not an array of byte strings")
        yield parts


def read_messages(path: str | os.PathLike[str], stream: str | None = None) -> Iterator[list[bytes]]:
    """Multipart messages as a device sent them, from a raw capture or from a dump.

    For a dump, each event's frames of ``stream`` (default: the first stream seen) form one message.
    """
    if _peek_first_byte(path) == b"\x80":
        items: Iterable[InternalWorkerMessage] = _iter_pickles(path)
        yield from _dump_messages(items, stream)
        return
    name = os.fspath(path)
    chosen = stream
    for offset, item in _iter_cbor(path):
        parts = _as_parts(item)
        if parts is not None:
            yield parts
            continue
        try:
            msg = item_to_message(item)
        except ValueError as exc:
            raise DumpError(name, offset, f"neither a capture nor a dump item ({exc})") from None
        if chosen is None and msg.streams:
            chosen = next(iter(msg.streams))
        if chosen in msg.streams:
            yield list(msg.streams[StreamName(chosen)].frames)  # type: ignore[arg-type]


def _dump_messages(items: Iterable[InternalWorkerMessage], stream: str | None) -> Iterator[list[bytes]]:
    for msg in items:
        if stream is None and msg.streams:
            stream = next(iter(msg.streams))
        if stream in msg.streams:
            yield list(msg.streams[StreamName(stream)].frames)  # type: ignore[arg-type, index]


# ----------------------------------------------------------------------------- writing


def _head(major: int, value: int) -> bytes:
    """A CBOR initial byte plus argument (RFC 8949 §3)."""
    mt = major << 5
    if value < 24:
        return bytes((mt | value,))
    if value < 1 << 8:
        return struct.pack(">BB", mt | 24, value)
    if value < 1 << 16:
        return struct.pack(">BH", mt | 25, value)
    if value < 1 << 32:
        return struct.pack(">BI", mt | 26, value)
    return struct.pack(">BQ", mt | 27, value)


def _text(s: str) -> bytes:
    b = s.encode()
    return _head(3, len(b)) + b


def _buffer(frame: Frame) -> memoryview | bytes:
    if isinstance(frame, zmq.Frame):
        return frame.buffer
    if isinstance(frame, str):
        return frame.encode()
    return memoryview(frame).cast("B") if not isinstance(frame, bytes) else frame


_DUMP_PREFIX = _head(6, TAG_SELF_DESCRIBE) + _head(6, TAG_MESSAGE)


def encode_dump_item(
    event_number: int,
    streams: Mapping[str, tuple[str, Sequence[Frame]]],
    created_at: datetime.datetime | None = None,
) -> list[bytes | memoryview]:
    """The chunks of one 3-element dump item, frames referenced, not copied."""
    if created_at is None:
        created_at = datetime.datetime.now(datetime.timezone.utc)
    elif created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=datetime.timezone.utc)
    stamp = created_at.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    head = bytearray(_DUMP_PREFIX)
    head += _head(4, 3) + _head(0, event_number) + _head(5, len(streams))
    chunks: list[bytes | memoryview] = []
    for name, (typ, frames) in streams.items():
        head += _text(name) + _head(6, TAG_STREAM) + _head(4, 2) + _text(typ) + _head(4, len(frames))
        for frame in frames:
            buf = _buffer(frame)
            head += _head(2, buf.nbytes if isinstance(buf, memoryview) else len(buf))
            chunks.append(bytes(head))
            chunks.append(buf)
            head = bytearray()
    head += _head(6, 0) + _text(stamp)
    chunks.append(bytes(head))
    return chunks


def encode_message(msg: InternalWorkerMessage) -> list[bytes | memoryview]:
    """The chunks of one dump item for an :class:`InternalWorkerMessage`."""
    streams = {k: (s.typ, s.frames) for k, s in msg.streams.items()}
    return encode_dump_item(msg.event_number, streams, msg.created_at)  # type: ignore[arg-type]


def encode_capture_item(parts: Sequence[Frame]) -> list[bytes | memoryview]:
    """The chunks of one raw-capture item (an array of byte strings)."""
    chunks: list[bytes | memoryview] = [_head(4, len(parts))]
    for p in parts:
        buf = _buffer(p)
        chunks.append(_head(2, buf.nbytes if isinstance(buf, memoryview) else len(buf)))
        chunks.append(buf)
    return chunks


def write_chunks(fp: IO[bytes], chunks: Iterable[bytes | memoryview]) -> int:
    """Write chunks in order; returns the byte count."""
    n = 0
    for c in chunks:
        fp.write(c)
        n += c.nbytes if isinstance(c, memoryview) else len(c)
    return n


def _open_write(path: str | os.PathLike[str]) -> IO[bytes]:
    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "wb")  # type: ignore[return-value]
    return open(path, "wb", buffering=1 << 20)


def write_dump(path: str | os.PathLike[str], messages: Iterable[InternalWorkerMessage]) -> int:
    """Write messages as a dump file (gzip when the name ends in ``.gz``); returns the item count."""
    n = 0
    with _open_write(path) as fp:
        for msg in messages:
            write_chunks(fp, encode_message(msg))
            n += 1
    return n


def write_capture(path: str | os.PathLike[str], messages: Iterable[Sequence[Frame]]) -> int:
    """Write multipart messages as a raw capture file; returns the message count."""
    n = 0
    with _open_write(path) as fp:
        for parts in messages:
            write_chunks(fp, encode_capture_item(parts))
            n += 1
    return n


def dump_pickle_bytes(msg: InternalWorkerMessage) -> bytes:
    """One item of the old ``.pkls`` format (for tests and converters)."""
    return pickle.dumps(msg)
