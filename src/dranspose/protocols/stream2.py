"""DECTRIS SIMPLON stream v2 (CBOR, PROTOCOLS §5): decode, synthetic encode, cutter.

Each ZeroMQ message is one part holding one self-described CBOR map whose ``type`` is
``start`` | ``image`` | ``end``. The CBOR walk runs in :mod:`dranspose.backend` (compiled
unless ``DRANSPOSE_BACKEND=python``): byte strings and typed arrays come back as zero-copy
views into the message (the flatfield, mask and lookup table of a start message; an
uncompressed image), compressed images (tag 56500, ``bslz4`` or ``lz4``) as
:class:`CompressedArray`, which :func:`decompress_array` / :class:`Stream2Decoder` turn into
arrays. Views keep the message buffer alive and are read-only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import cbor2
import numpy as np

from dranspose import backend as _backend_mod
from dranspose._reference.cbor_types import CborTag, CompressedArray
from dranspose.codecs import bslz4_compress, bslz4_decompress, lz4_compress, lz4_decompress
from dranspose.codecs._common import byte_view, check_ratio
from dranspose.errors import CorruptFrameError, ProtocolError
from dranspose.protocols.base import Frame, Kind, Unit
from dranspose.protocols.stins import FrameGapTracker

logger = logging.getLogger(__name__)

TYP = "STREAM2"
SOCKET = "PULL"
_KINDS = {"start": Kind.START, "image": Kind.DATA, "end": Kind.END}
# RFC 8746 little-endian typed-array tags by numpy dtype string
_TAGS = {"|u1": 64, "<u2": 69, "<u4": 70, "<u8": 71, "|i1": 72, "<i2": 77, "<i4": 78, "<i8": 79,
         "<f2": 84, "<f4": 85, "<f8": 86}


# ---------------------------------------------------------------- decode


@dataclass
class Stream2Message:
    """A decoded message: ``kind``, the full CBOR map, and for images ``data`` channel -> array."""

    kind: Kind
    fields: dict[Any, Any]
    data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def image_id(self) -> int | None:
        v = self.fields.get("image_id")
        return v if type(v) is int else None


def decode_map(message: Frame) -> dict[Any, Any]:
    """The message's CBOR map (zero-copy walk); checks ``type``. Raises ProtocolError."""
    obj = _backend_mod.active.cbor_decode(message)
    if not isinstance(obj, dict):
        raise ProtocolError("stream v2 message is not a CBOR map")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ProtocolError(f"stream v2 type {obj.get('type')!r} is not start, image or end")
    return obj


def _array_dtype(ca: CompressedArray) -> np.dtype:
    if ca.dtype is not None:
        return ca.dtype
    if ca.elem_size in (1, 2, 4, 8):
        return np.dtype(f"<u{ca.elem_size}")
    raise ProtocolError(f"stream v2 compressed array without a typed-array tag (elem {ca.elem_size})")


def decompress_array(
    ca: CompressedArray, *, out: np.ndarray | None = None, nthreads: int | None = None
) -> np.ndarray:
    """Decompress a tag-56500 payload into ``out`` (C-contiguous, right size) or a new array.

    ``bslz4`` requires the modifier to equal the element size; ``lz4`` is HDF5-LZ4 framed.
    Raises CorruptFrameError for bad payloads, ProtocolError for unknown algorithms.
    """
    dt = _array_dtype(ca)
    shape = ca.shape
    target = out
    if out is not None and ca.order == "F":
        target = out.T if out.flags.f_contiguous else None
    if ca.algorithm == "bslz4":
        if ca.elem_size != dt.itemsize:
            raise ProtocolError(f"bslz4 modifier {ca.elem_size} != element size {dt.itemsize}")
        flat = bslz4_decompress(ca.data, dt, None if shape is None else (math.prod(shape),),
                                out=None if target is None else target.reshape(-1),
                                nthreads=nthreads)
    elif ca.algorithm == "lz4":
        flat = lz4_decompress(ca.data, dt, None if shape is None else (math.prod(shape),),
                              out=None if target is None else target.reshape(-1),
                              nthreads=nthreads)
    else:
        raise ProtocolError(f"stream v2 compression {ca.algorithm!r} is not bslz4 or lz4")
    if shape is None:
        return flat if out is None else out
    if target is not None and out is not None:
        return out
    res = flat.reshape(shape, order="F" if ca.order == "F" else "C")
    if out is not None:
        out[...] = res
        return out
    return res


class Stream2Decoder:
    """Decodes image messages into per-channel buffers that are reused from call to call.

    The arrays returned by :meth:`decode` are overwritten by the next call with the same
    channel, shape and dtype: copy them to keep them. Uncompressed channels are zero-copy
    views of the message instead. Not thread-safe (one decoder per thread).
    """

    def __init__(self, nthreads: int | None = None) -> None:
        self.nthreads = nthreads
        self._buffers: dict[str, np.ndarray] = {}

    def _buffer(self, channel: str, ca: CompressedArray) -> np.ndarray | None:
        if ca.shape is None:
            return None
        dt = _array_dtype(ca)
        buf = self._buffers.get(channel)
        if buf is None or buf.shape != ca.shape or buf.dtype != dt:
            buf = np.empty(ca.shape, dtype=dt, order="F" if ca.order == "F" else "C")
            self._buffers[channel] = buf
        return buf

    def decode(self, message: Frame) -> Stream2Message:
        """Decode any message; image channels are decompressed (into the reused buffers)."""
        fields = decode_map(message)
        kind = _KINDS[fields["type"]]
        msg = Stream2Message(kind, fields)
        if kind is Kind.DATA:
            channels = fields.get("data")
            if not isinstance(channels, dict):
                raise ProtocolError("stream v2 image without a data map")
            for name, value in channels.items():
                msg.data[str(name)] = self._channel(str(name), value)
        return msg

    def _channel(self, name: str, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, CompressedArray):
            if value.shape is not None:  # refuse absurd claims before allocating the buffer
                nbytes = math.prod(value.shape) * _array_dtype(value).itemsize
                check_ratio(nbytes, byte_view(value.data).nbytes, f"stream v2 channel {name!r}")
            return decompress_array(value, out=self._buffer(name, value), nthreads=self.nthreads)
        raise ProtocolError(f"stream v2 channel {name!r} is not an array")


def decode(message: Frame, *, nthreads: int | None = None) -> Stream2Message:
    """Decode one message into fresh arrays (see :class:`Stream2Decoder` to reuse buffers)."""
    return Stream2Decoder(nthreads).decode(message)


def decode_image(parts: Sequence[Frame], *, nthreads: int | None = None) -> dict[str, np.ndarray]:
    """The channels of an image message (one part) as numpy arrays, by channel name."""
    if len(parts) != 1:
        raise ProtocolError(f"stream v2 message has {len(parts)} parts, expected 1")
    msg = decode(parts[0], nthreads=nthreads)
    if msg.kind is not Kind.DATA:
        raise ProtocolError(f"stream v2 {msg.fields['type']} message is not an image")
    return msg.data


# ---------------------------------------------------------------- encode (synthetic sources)


def _typed(arr: np.ndarray, compression: str) -> cbor2.CBORTag:
    dt = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    arr = np.ascontiguousarray(arr, dtype=dt)
    tag = _TAGS.get(arr.dtype.str)
    if tag is None:
        raise ValueError(f"dtype {arr.dtype} has no RFC 8746 tag here")
    if compression == "none":
        payload: Any = arr.tobytes()
    elif compression == "bslz4":
        payload = cbor2.CBORTag(56500, ["bslz4", arr.dtype.itemsize, bslz4_compress(arr)])
    elif compression == "lz4":
        payload = cbor2.CBORTag(56500, ["lz4", 0, lz4_compress(arr)])
    else:
        raise ValueError(f"unknown compression {compression!r}")
    return cbor2.CBORTag(40, [list(arr.shape), cbor2.CBORTag(tag, payload)])


def _dumps(obj: dict[str, Any]) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(55799, obj))


def encode_start(
    series_id: int,
    channels: Sequence[str] = ("threshold_1",),
    *,
    series_unique_id: str = "",
    flatfield: Mapping[str, np.ndarray] | None = None,
    pixel_mask: Mapping[str, np.ndarray] | None = None,
    **extra: Any,
) -> list[bytes]:
    """A one-part start message (flatfield and mask maps uncompressed)."""
    obj: dict[str, Any] = {"type": "start", "series_id": series_id,
                           "series_unique_id": series_unique_id, "channels": list(channels)}
    if flatfield is not None:
        obj["flatfield"] = {k: _typed(np.asarray(v), "none") for k, v in flatfield.items()}
    if pixel_mask is not None:
        obj["pixel_mask"] = {k: _typed(np.asarray(v), "none") for k, v in pixel_mask.items()}
    obj.update(extra)
    return [_dumps(obj)]


def encode_image(
    series_id: int,
    image_id: int,
    data: Mapping[str, np.ndarray] | np.ndarray,
    compression: str = "bslz4",
    *,
    series_unique_id: str = "",
    **extra: Any,
) -> list[bytes]:
    """A one-part image message; ``data`` maps channel names to arrays (or one array for
    ``threshold_1``); ``compression`` is ``bslz4``, ``lz4`` or ``none``."""
    channels = {"threshold_1": data} if isinstance(data, np.ndarray) else dict(data)
    obj: dict[str, Any] = {
        "type": "image",
        "series_id": series_id,
        "series_unique_id": series_unique_id,
        "image_id": image_id,
        "real_time": [1, 1],
        "series_date": cbor2.CBORTag(0, "2026-01-01T00:00:00.000+00:00"),
        "start_time": [image_id, 1],
        "stop_time": [image_id + 1, 1],
        "data": {k: _typed(np.asarray(v), compression) for k, v in channels.items()},
    }
    obj.update(extra)
    return [_dumps(obj)]


def encode_end(series_id: int, *, series_unique_id: str = "") -> list[bytes]:
    """A one-part end message."""
    return [_dumps({"type": "end", "series_id": series_id, "series_unique_id": series_unique_id})]


# ---------------------------------------------------------------- cutter


class Stream2Cutter:
    """Cuts a stream-v2 stream: start = START, image = DATA (``frame_number`` = ``image_id``),
    end = END. The single frame is passed through unchanged. Not thread-safe."""

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self.gaps = FrameGapTracker(TYP)

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            raise ProtocolError(f"stream v2 message has {len(parts)} parts, expected 1")
        try:
            fields = decode_map(parts[0])
        except CorruptFrameError as exc:
            raise ProtocolError(f"stream v2 message is not valid CBOR: {exc}") from exc
        kind = _KINDS[fields["type"]]
        if kind is Kind.DATA:
            image_id = fields.get("image_id")
            if type(image_id) is not int:
                raise ProtocolError(f"stream v2 image_id {image_id!r} is not an integer")
            unit = Unit(kind, list(parts), frame_number=image_id)
            self.gaps.check(image_id, unit)
            return [unit]
        if kind is Kind.START:
            self.gaps.reset()
        return [Unit(kind, list(parts))]

    def reset(self) -> None:
        self.gaps.reset()


CUTTER = Stream2Cutter
"""The cutter ingesters use for this protocol."""

__all__ = [
    "CUTTER",
    "CborTag",
    "CompressedArray",
    "Stream2Cutter",
    "Stream2Decoder",
    "Stream2Message",
    "decode",
    "decode_image",
    "decode_map",
    "decompress_array",
    "encode_end",
    "encode_image",
    "encode_start",
]
