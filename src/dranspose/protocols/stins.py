"""STINS, the MAX IV simplified stream (PROTOCOLS §3): decode, synthetic encode, cutter.

Messages are ZeroMQ multipart messages whose part 0 is a JSON object with ``htype``
``header`` | ``image`` | ``series_end``; an image carries its pixels in parts 1.. as raw
little-endian bytes (``compression: "none"``), bitshuffle+LZ4 (``"bslz4"``, 12-byte header,
or headerless per §1.4) or HDF5-LZ4 (``"lz4"``).

Buffer ownership: decoders only read the parts. :func:`decode_image` returns a read-only
numpy view sharing memory with the frame for a single uncompressed blob (zero-copy; the
array keeps the frame alive); compressed data is decompressed into a new array or ``out=``.

The models (``Stream1*``) are re-exported by ``dranspose.data.stream1``, :func:`parse` and
:func:`parse_decompressed` by ``dranspose.middlewares.stream1``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np
import orjson
import zmq
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from dranspose.backend import stins_image_frame
from dranspose.codecs import bslz4_compress, bslz4_decompress, lz4_compress, lz4_decompress
from dranspose.codecs._common import byte_view, check_ratio
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import dumps_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, Unit, compat_module

logger = logging.getLogger(__name__)

TYP = "STINS"
SOCKET = "PULL"
COMPRESSIONS = ("none", "bslz4", "lz4")


def _json(part: Any, what: str = "STINS part 0") -> dict[str, Any]:
    return loads_json_object(part, what)


def _quick_json(part: Any) -> Any:
    """orjson's reading of a header, for the cutter: it reads integers past 64 bits as floats,
    which the header checks refuse, so the cutter then reads the header again with :func:`_json`
    (a header is accepted on orjson's reading only where json's reading gives the same)."""
    return orjson.loads(memoryview(part) if isinstance(part, zmq.Frame) else part)  # type: ignore[arg-type]  # not .buffer: a weakref per call


_dumps = dumps_json


# ---------------------------------------------------------------- models


class Stream1(BaseModel):
    """Fields every STINS message carries; mutable, extra keys allowed."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    msg_number: int

    def to_stream_data(self) -> StreamData:
        """The STINS frames of this packet: compact JSON (without ``data``), then the pixels
        when a ``data`` array is set (compressed as ``compression`` says)."""
        frames: list[bytes] = [self.model_dump_json(exclude={"data"}).encode()]
        data = getattr(self, "data", None)
        if data is not None:
            frames.append(_blob(np.asarray(data), getattr(self, "compression", "none")))
        return StreamData(typ=TYP, frames=frames)


class Stream1Start(Stream1):
    """Series header (``htype == "header"``)."""

    htype: Literal["header"] = "header"
    filename: str


class Stream1Data(Stream1):
    """One image. After :func:`parse` an uncompressed image has a read-only ``data`` view of the
    pixel frame; a compressed one has no ``data`` attribute."""

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    type: str
    compression: str


class Stream1End(Stream1):
    """End of series (``htype == "series_end"``)."""

    htype: Literal["series_end"] = "series_end"


Stream1Packet: TypeAdapter[Any] = TypeAdapter(Union[Stream1Start, Stream1Data, Stream1End])
"""Validates any STINS part-0 JSON into one of the three classes (``Stream1Packet.validate_json(frames[0])``)."""

compat_module("dranspose.data.stream1", Stream1, Stream1Start, Stream1Data, Stream1End)


# ---------------------------------------------------------------- encode (synthetic sources)


def encode_header(msg_number: int, filename: str = "", **extra: Any) -> list[bytes]:
    """A one-part header message; ``extra`` keys are added to its JSON."""
    return [_dumps({"htype": "header", "msg_number": msg_number, "filename": filename, **extra})]


def encode_image(
    msg_number: int, frame: int, array: np.ndarray, compression: str = "none", **extra: Any
) -> list[bytes]:
    """A two-part image message: JSON header and the (possibly compressed) pixel blob.

    ``compression`` is ``"none"``, ``"bslz4"`` (with the 12-byte header) or ``"lz4"``
    (HDF5-LZ4 framing). The array is written little-endian in C order (copied).
    """
    arr = np.asarray(array)
    dt = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    arr = np.ascontiguousarray(arr, dtype=dt)
    meta = {
        "htype": "image",
        "msg_number": msg_number,
        "frame": frame,
        "shape": list(arr.shape),
        "type": arr.dtype.name,
        "compression": compression,
        **extra,
    }
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; use one of {COMPRESSIONS}")
    blob = _blob(arr, compression)
    return [_dumps(meta), blob]


def _blob(arr: np.ndarray, compression: str) -> bytes:
    """The pixel part of an image: raw C-order bytes, bitshuffle+LZ4 or HDF5-LZ4."""
    if compression == "bslz4":
        return bslz4_compress(arr)
    if compression == "lz4":
        return lz4_compress(arr)
    return np.ascontiguousarray(arr).tobytes()


def encode_end(msg_number: int) -> list[bytes]:
    """A one-part ``series_end`` message."""
    return [_dumps({"htype": "series_end", "msg_number": msg_number})]


# ---------------------------------------------------------------- decode


# plain numeric type names (``uint16``) and codes (``<u2``); anything else never reaches
# numpy's dtype parser (which evaluates subarray shapes such as ``(2,3)f4``)
_DTYPE_NAME = re.compile(r"^(?:bool|u?int(?:8|16|32|64)|float(?:16|32|64)|[<>|=]?[buif][1248])$")


def _dtype(name: Any) -> np.dtype:
    if type(name) is str:
        known = _DTYPES.get(name)
        if known is not None:
            return known
    if not isinstance(name, str) or not _DTYPE_NAME.match(name):
        raise ProtocolError(f"STINS image type {name!r:.40} is not a plain numeric type")
    dt = _plain_dtype(name)
    _DTYPES[name] = dt  # bounded: _DTYPE_NAME admits a few dozen names
    return dt


_DTYPES: dict[str, np.dtype] = {}  # names that passed :func:`_dtype` (the only cache of _plain_dtype)


def _plain_dtype(name: str) -> np.dtype:
    dt = np.dtype(name)
    if dt.kind not in "biuf" or dt.itemsize == 0:
        raise ProtocolError(f"STINS image type {name!r} is not a numeric dtype")
    little: np.dtype = dt.newbyteorder("<") if dt.itemsize > 1 else dt
    return little


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, list):
        for v in value:
            if type(v) is not int or v < 0:
                break
        else:
            return tuple(value)
    raise ProtocolError(f"STINS {what} {value!r} is not a list of non-negative integers")


@dataclass
class ImageInfo:
    """The validated JSON of an image message."""

    frame: int
    shape: tuple[int, ...]
    dtype: np.dtype
    compression: str
    msg_number: int | None
    chunks: tuple[int, ...] | None
    meta: dict[str, Any] = field(default_factory=dict)


def _image_fields(meta: dict[str, Any]) -> tuple[int, str, int | None, tuple[int, ...], np.dtype, tuple[int, ...] | None]:
    """(frame, compression, msg_number, shape, dtype, chunks) of an image header, checked in
    that order (raises ProtocolError naming the first bad field)."""
    frame = meta.get("frame")
    if type(frame) is not int:
        raise ProtocolError(f"STINS image needs an integer frame, got {frame!r}")
    compression = meta.get("compression", "none")
    if compression not in COMPRESSIONS:
        raise ProtocolError(f"STINS compression {compression!r} not in {COMPRESSIONS}")
    msg_number = meta.get("msg_number")
    if msg_number is not None and type(msg_number) is not int:
        raise ProtocolError(f"STINS msg_number {msg_number!r} is not an integer")
    chunks = meta.get("chunks")
    shape = _shape(meta.get("shape"), "shape")
    dtype = _dtype(meta.get("type"))
    return frame, compression, msg_number, shape, dtype, None if chunks is None else _shape(chunks, "chunks")


def parse_image_header(meta: dict[str, Any]) -> ImageInfo:
    """Validate the JSON of an image message (raises ProtocolError)."""
    frame, compression, msg_number, shape, dtype, chunks = _image_fields(meta)
    return ImageInfo(frame=frame, shape=shape, dtype=dtype, compression=compression, msg_number=msg_number, chunks=chunks, meta=meta)


def _decode_blob(
    blob: Any, info: ImageInfo, shape: tuple[int, ...], out: np.ndarray | None, nthreads: int | None
) -> np.ndarray:
    nbytes = math.prod(shape) * info.dtype.itemsize
    if info.compression == "none":
        mv = memoryview(blob).toreadonly()
        if mv.nbytes != nbytes:
            raise ProtocolError(f"STINS raw blob has {mv.nbytes} bytes, shape needs {nbytes}")
        view = np.frombuffer(mv.cast("B") if mv.format != "B" else mv, dtype=info.dtype)
        view = view.reshape(shape)
        if out is None:
            return view
        out[...] = view
        return out
    if info.compression == "bslz4":
        return bslz4_decompress(blob, info.dtype, shape, out=out, nthreads=nthreads)
    res = lz4_decompress(blob, info.dtype, shape, out=out, nthreads=nthreads)
    return res


def decode_image(
    parts: Sequence[Frame], *, out: np.ndarray | None = None, nthreads: int | None = None
) -> np.ndarray:
    """The pixels of an image message as a numpy array of the message's ``shape``.

    One uncompressed blob gives a zero-copy read-only view of the frame (unless ``out``).
    Several blobs: with ``chunks`` (e.g. ``[1, H, W]`` per threshold) they are consecutive
    pieces of ``shape``; without, each blob is a whole ``shape`` and the result is stacked as
    ``(n_blobs, *shape)``. Raises ProtocolError / CorruptFrameError on bad input.
    """
    if len(parts) < 2:
        raise ProtocolError(f"STINS image has {len(parts)} parts, needs at least 2")
    info = parse_image_header(_json(parts[0]))
    blobs = parts[1:]
    if len(blobs) == 1:
        return _decode_blob(blobs[0], info, info.shape, out, nthreads)
    if info.chunks is not None:
        per = math.prod(info.chunks)
        if per * len(blobs) != math.prod(info.shape):
            raise ProtocolError(f"{len(blobs)} chunks of {list(info.chunks)} do not fill {list(info.shape)}")
        full = info.shape
        piece = (per,)
    else:
        full = (len(blobs), *info.shape)
        piece = (math.prod(info.shape),)
    total = sum(byte_view(b).nbytes for b in blobs)
    check_ratio(math.prod(full) * info.dtype.itemsize, total, "STINS image")
    res = np.empty(full, dtype=info.dtype) if out is None else out
    if res.shape != full or res.dtype != info.dtype or not res.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {info.dtype} array of shape {full}")
    flat = res.reshape(len(blobs), -1)
    for i, blob in enumerate(blobs):
        _decode_blob(blob, info, piece, flat[i], nthreads)
    return res


@dataclass
class StinsMessage:
    """A decoded message: ``kind``, the part-0 JSON, extra JSON parts, pixels for images."""

    kind: Kind
    meta: dict[str, Any]
    extra: list[dict[str, Any]] = field(default_factory=list)
    data: np.ndarray | None = None


def decode(parts: Sequence[Frame], *, out: np.ndarray | None = None, nthreads: int | None = None) -> StinsMessage:
    """Decode any STINS message (header extras parsed as JSON, images decompressed)."""
    if len(parts) < 1:
        raise ProtocolError("empty STINS message")
    meta = _json(parts[0])
    kind = classify(meta)
    if kind is Kind.DATA:
        return StinsMessage(kind, meta, data=decode_image(parts, out=out, nthreads=nthreads))
    extra = [_json(p, f"STINS {meta['htype']} part {i + 1}") for i, p in enumerate(parts[1:])]
    return StinsMessage(kind, meta, extra)


def _packet(data: StreamData) -> Any:
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    if not data.frames:
        raise ProtocolError("STINS stream data without frames")
    try:
        return Stream1Packet.validate_python(_json(data.frames[0]))
    except ValidationError as exc:
        raise ProtocolError(f"invalid STINS packet: {exc}") from None


def parse(data: StreamData) -> Any:
    """StreamData (typ ``STINS``) -> Stream1Start | Stream1Data | Stream1End, as the old
    ``middlewares.stream1.parse``: an uncompressed image gets a read-only zero-copy ``data``
    view of its pixels; a compressed image gets **no** ``data`` (decompress ``frames[1]``
    yourself, or use :func:`parse_decompressed`). Errors are ProtocolError (a ValueError)."""
    packet = _packet(data)
    if isinstance(packet, Stream1Data) and packet.compression == "none":
        if len(data.frames) < 2:
            raise ProtocolError("STINS image without a data frame")
        setattr(packet, "data", decode_image(data.frames))
    return packet


def parse_decompressed(data: StreamData, *, out: np.ndarray | None = None, nthreads: int | None = None) -> Any:
    """Like :func:`parse`, but compressed images (bslz4, lz4) get a decompressed ``data``."""
    packet = _packet(data)
    if isinstance(packet, Stream1Data):
        setattr(packet, "data", decode_image(data.frames, out=out, nthreads=nthreads))
    return packet


def classify(meta: dict[str, Any]) -> Kind:
    htype = meta.get("htype")
    if htype == "header":
        return Kind.START
    if htype == "image":
        return Kind.DATA
    if htype == "series_end":
        return Kind.END
    raise ProtocolError(f"STINS htype {htype!r} is not header, image or series_end")


# ---------------------------------------------------------------- cutter


class FrameGapTracker:
    """Annotates a unit whose frame number does not follow the previous one with
    ``meta["expected_frame"]`` (informational: event numbers stay positional). The check is
    :class:`dranspose.core.pairing.FrameCheck`; the ingester counts and logs gaps (once)."""

    def __init__(self, typ: str) -> None:
        from dranspose.core.pairing import FrameCheck

        self.typ = typ
        self._check = FrameCheck()

    @property
    def gaps(self) -> int:
        return self._check.gaps

    def check(self, frame: int, unit: Unit) -> None:
        expected = self._check.check(frame)
        if expected is not None:
            unit.meta["expected_frame"] = expected

    def reset(self) -> None:
        self._check.reset()


class StinsCutter:
    """Cuts a STINS stream: header = START, image = DATA (``frame_number`` = ``frame``),
    series_end = END. Frames are passed through unchanged (zero-copy). Not thread-safe."""

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self.gaps = FrameGapTracker(TYP)

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) < 1:
            raise ProtocolError("empty STINS message")
        try:  # orjson first; whatever it refuses or reads differently is read again below
            meta = _quick_json(parts[0])
            if type(meta) is dict:
                return self._cut(parts, meta)
        except (ProtocolError, ValueError, TypeError):
            pass
        return self._cut(parts, _json(parts[0]))  # json's reading, json's verdict and error

    def _cut(self, parts: Sequence[Frame], meta: dict[str, Any]) -> list[Unit]:
        frame = stins_image_frame(meta, _DTYPES)  # a well-formed image, checked in one pass
        if frame is not None and len(parts) >= 2:
            unit = Unit(Kind.DATA, list(parts), frame_number=frame)
            self.gaps.check(frame, unit)
            return [unit]
        kind = classify(meta)  # anything else: the checks below decide and name the fault
        if kind is Kind.DATA:
            if len(parts) < 2:
                raise ProtocolError("STINS image without a data part")
            frame = _image_fields(meta)[0]  # every field checked, as parse_image_header does
            unit = Unit(kind, list(parts), frame_number=frame)
            self.gaps.check(frame, unit)
            return [unit]
        if kind is Kind.START:
            self.gaps.reset()
        return [Unit(kind, list(parts))]

    def reset(self) -> None:
        self.gaps.reset()


CUTTER = StinsCutter
"""The cutter ingesters use for this protocol."""
