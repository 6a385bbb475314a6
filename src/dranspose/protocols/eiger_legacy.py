"""DECTRIS SIMPLON stream v1 "legacy" (PROTOCOLS §4): decode, synthetic encode, cutter.

Header: 1, 2, 3, 8 or 9 parts (``header_detail`` none/basic/all, optional appendix).
Image: 4 or 5 parts (part 2 = pixels, encoding ``bs<BITS>-lz4<`` = bslz4 with the 12-byte
header, ``lz4<`` = LZ4, ``<`` = raw little-endian; optional image appendix).
End: 1 part. Shapes on the wire are ``[X, Y]``; numpy shapes are ``(Y, X)``.

Buffer ownership: decoders only read the parts; raw (``<``) images and the header's
flatfield/mask/countrate arrays are read-only zero-copy views into the frames.

The models are re-exported by ``dranspose.data.eiger_legacy`` and :func:`parse` by
``dranspose.middlewares.eiger_legacy``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from dranspose import backend as _backend_mod
from dranspose.codecs import bslz4_compress, bslz4_decompress, lz4_decompress
from dranspose.codecs import lz4 as _lz4
from dranspose.codecs._common import byte_view, check_ratio, frame_bytes, prepare_out
from dranspose.errors import CorruptFrameError, ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import dumps_json, loads_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, Unit, compat_module
from dranspose.protocols.stins import FrameGapTracker

logger = logging.getLogger(__name__)

TYP = "EIGER_LEGACY"
SOCKET = "PULL"
HEADER_PARTS = (1, 2, 3, 8, 9)
IMAGE_PARTS = (4, 5)
_KINDS = {"dheader-1.0": Kind.START, "dimage-1.0": Kind.DATA, "dseries_end-1.0": Kind.END}
_ENCODING = re.compile(r"^(?:bs(8|16|32|64)-)?(lz4)?<$")


def _json(part: Any, what: str) -> dict[str, Any]:
    return loads_json_object(part, f"Eiger {what}")


def _dumps(obj: dict[str, Any]) -> bytes:
    return dumps_json(obj, sort_keys=True)  # DECTRIS sorts its keys


def _json_or_bytes(part: Any) -> Any:
    """An appendix: JSON when it parses, else its raw bytes."""
    try:
        return loads_json(part, "Eiger appendix")
    except ProtocolError:
        return frame_bytes(part)


# --- models ------------------------------------------------------------------------------------


class EigerLegacy(BaseModel):
    """An Eiger SIMPLON v1 packet (part 0): mutable, extra keys allowed. After :func:`parse` a
    header has ``info`` (detector config, when sent) and ``appendix`` (when sent); an image has
    ``data`` (part 1 JSON plus ``buffer``, the raw pixel bytes) and ``config`` (part 3 JSON)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


class EigerLegacyHeader(EigerLegacy):
    htype: Literal["dheader-1.0"] = "dheader-1.0"

    def to_stream_data(self) -> StreamData:
        """Part 0, then ``info`` (config) and ``appendix`` when set."""
        frames = [_dumps(self.model_dump(exclude={"info", "appendix"}))]
        info = getattr(self, "info", None)
        if info is not None:
            frames.append(_dumps(info))
        appendix = getattr(self, "appendix", None)
        if appendix is not None:
            frames.append(appendix if isinstance(appendix, bytes) else _dumps(appendix))
        return StreamData(typ=TYP, frames=frames)


class EigerLegacyImage(EigerLegacy):
    htype: Literal["dimage-1.0"] = "dimage-1.0"
    frame: int

    def to_stream_data(self) -> StreamData:
        """The 4-part image: part 0 (hash = MD5 of part 1), ``data`` without ``buffer``, the
        buffer, ``config`` (5 parts with an ``appendix``)."""
        data = dict(getattr(self, "data", None) or {})
        buffer = data.pop("buffer", b"")
        part1 = _dumps(data)
        head = self.model_dump(exclude={"data", "config", "appendix"})
        head["hash"] = hashlib.md5(part1).hexdigest()
        config = getattr(self, "config", None) or {"htype": "dconfig-1.0"}
        frames = [_dumps(head), part1, bytes(buffer), _dumps(config)]
        appendix = getattr(self, "appendix", None)
        if appendix is not None:
            frames.append(appendix if isinstance(appendix, bytes) else _dumps(appendix))
        return StreamData(typ=TYP, frames=frames)


class EigerLegacyEnd(EigerLegacy):
    htype: Literal["dseries_end-1.0"] = "dseries_end-1.0"

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[_dumps(self.model_dump())])


EigerLegacyPacket: TypeAdapter[Any] = TypeAdapter(Union[EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd])
"""Validates any Eiger part-0 JSON into one of the three classes."""

compat_module("dranspose.data.eiger_legacy", EigerLegacy, EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd)


def classify(meta: dict[str, Any]) -> Kind:
    htype = meta.get("htype")
    kind = _KINDS.get(htype) if isinstance(htype, str) else None
    if kind is None:
        raise ProtocolError(f"Eiger htype {meta.get('htype')!r} is not a header, image or end")
    return kind


def _np_shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(type(v) is int and v >= 0 for v in value):
        raise ProtocolError(f"Eiger {what} shape {value!r} is not a list of non-negative integers")
    return tuple(reversed(value))


def _dtype(name: Any) -> np.dtype:
    if name not in ("uint8", "uint16", "uint32", "int32", "float32", "float64"):
        raise ProtocolError(f"Eiger type {name!r} is not supported")
    dt = np.dtype(name)
    little: np.dtype = dt.newbyteorder("<") if dt.itemsize > 1 else dt
    return little


def _raw_view(blob: Any, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    mv = byte_view(blob).toreadonly()
    need = math.prod(shape) * dtype.itemsize
    if len(mv) != need:
        raise CorruptFrameError(f"Eiger {what} has {len(mv)} bytes, its shape needs {need}", len(mv))
    return np.frombuffer(mv, dtype=dtype).reshape(shape)


# ---------------------------------------------------------------- decode


@dataclass
class EigerHeader:
    """A decoded header: part 0, the detector config, header arrays, appendix."""

    meta: dict[str, Any]
    config: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # flatfield, pixelmask, countrate_table
    appendix: Any = None


def decode_header(parts: Sequence[Frame], *, arrays: bool = True) -> EigerHeader:
    """Decode a header of any supported part count (1, 2, 3, 8 or 9).

    With ``arrays=False`` the flatfield/mask/countrate blobs are not checked or viewed
    (their descriptions still are), e.g. to read the config of a truncated capture.
    """
    if len(parts) not in HEADER_PARTS:
        raise ProtocolError(f"Eiger header has {len(parts)} parts, expected one of {HEADER_PARTS}")
    meta = _json(parts[0], "header part 0")
    if classify(meta) is not Kind.START:
        raise ProtocolError("not an Eiger header")
    hdr = EigerHeader(meta)
    rest = list(parts[1:])
    if len(rest) >= 7 or (len(rest) >= 1 and meta.get("header_detail") in ("basic", "all")):
        hdr.config = _json(rest.pop(0), "header config")
    if len(rest) >= 6:
        for _ in range(3):
            info = _json(rest.pop(0), "header array description")
            blob = rest.pop(0)
            name = str(info.get("htype", "array")).split("-")[0].lstrip("d")
            dt, shape = _dtype(info.get("type")), _np_shape(info.get("shape"), name)
            if arrays:
                hdr.arrays[name] = _raw_view(blob, dt, shape, name)
    if rest:
        hdr.appendix = _json_or_bytes(rest.pop(0))
    if rest:
        raise ProtocolError(f"Eiger header has {len(rest)} unexpected parts")
    return hdr


@dataclass
class ImageInfo:
    """The validated JSON parts of an image message."""

    frame: int
    series: Any
    hash: str | None
    encoding: str
    shape: tuple[int, ...]  # numpy order (Y, X)
    dtype: np.dtype
    size: int
    elem_bits: int | None
    lz4: bool
    data_meta: dict[str, Any]


def parse_image_meta(parts: Sequence[Frame]) -> ImageInfo:
    """Validate parts 0 and 1 of an image message."""
    if len(parts) not in IMAGE_PARTS:
        raise ProtocolError(f"Eiger image has {len(parts)} parts, expected 4 or 5")
    meta = _json(parts[0], "image part 0")
    if classify(meta) is not Kind.DATA:
        raise ProtocolError("not an Eiger image")
    frame = meta.get("frame")
    if type(frame) is not int:
        raise ProtocolError(f"Eiger image frame {frame!r} is not an integer")
    dmeta = _json(parts[1], "image part 1")
    enc = dmeta.get("encoding")
    m = _ENCODING.match(enc) if isinstance(enc, str) else None
    if m is None or not isinstance(enc, str):
        raise ProtocolError(f"Eiger encoding {enc!r} is not [bsN-][lz4]<")
    size = dmeta.get("size")
    if type(size) is not int or size < 0:
        raise ProtocolError(f"Eiger image size {size!r} is not an integer")
    return ImageInfo(
        frame=frame,
        series=meta.get("series"),
        hash=meta.get("hash"),
        encoding=enc,
        shape=_np_shape(dmeta.get("shape"), "image"),
        dtype=_dtype(dmeta.get("type")),
        size=size,
        elem_bits=int(m.group(1)) if m.group(1) else None,
        lz4=m.group(2) is not None,
        data_meta=dmeta,
    )


def verify_hash(parts: Sequence[Frame]) -> bool:
    """True when part 0's ``hash`` is the MD5 of part 1's exact bytes (as DECTRIS sends)."""
    meta = _json(parts[0], "image part 0")
    return meta.get("hash") == hashlib.md5(frame_bytes(parts[1])).hexdigest()


def decode_image(
    parts: Sequence[Frame], *, out: np.ndarray | None = None, nthreads: int | None = None
) -> np.ndarray:
    """The pixels of an image message as a ``(Y, X)`` numpy array.

    Raw (``<``) data is a read-only zero-copy view unless ``out`` is given. Truncated or
    corrupt blobs raise CorruptFrameError; malformed JSON parts ProtocolError.
    """
    info = parse_image_meta(parts)
    blob = byte_view(parts[2])
    if len(blob) != info.size:
        raise CorruptFrameError(
            f"Eiger frame {info.frame}: pixel part has {len(blob)} bytes, size says {info.size}",
            len(blob),
        )
    if info.elem_bits is not None:
        if info.elem_bits != 8 * info.dtype.itemsize:
            raise ProtocolError(f"encoding {info.encoding} does not match type {info.dtype}")
        if not info.lz4:
            raise ProtocolError(f"encoding {info.encoding}: bitshuffle without lz4 is not supported")
        return bslz4_decompress(blob, info.dtype, info.shape, out=out, nthreads=nthreads)
    if info.lz4:
        nbytes = math.prod(info.shape) * info.dtype.itemsize
        if _lz4.has_header(blob, nbytes):
            return lz4_decompress(blob, info.dtype, info.shape, out=out, nthreads=nthreads)
        check_ratio(nbytes, len(blob), "Eiger lz4 image")
        res, flat = prepare_out(out, info.dtype, info.shape, nbytes)
        _backend_mod.active.lz4_block_decompress_into(blob, flat)
        return res
    view = _raw_view(blob, info.dtype, info.shape, "image")
    if out is None:
        return view
    out[...] = view
    return out


@dataclass
class EigerMessage:
    """Any decoded message: ``kind``, part 0, and the decoded body."""

    kind: Kind
    meta: dict[str, Any]
    header: EigerHeader | None = None
    data: np.ndarray | None = None
    config: dict[str, Any] | None = None
    appendix: Any = None


def decode(parts: Sequence[Frame], *, out: np.ndarray | None = None, nthreads: int | None = None) -> EigerMessage:
    """Decode a header, image (decompressed) or end message."""
    if not parts:
        raise ProtocolError("empty Eiger message")
    meta = _json(parts[0], "part 0")
    kind = classify(meta)
    if kind is Kind.START:
        return EigerMessage(kind, meta, header=decode_header(parts))
    if kind is Kind.END:
        if len(parts) != 1:
            raise ProtocolError(f"Eiger end has {len(parts)} parts, expected 1")
        return EigerMessage(kind, meta)
    msg = EigerMessage(kind, meta, data=decode_image(parts, out=out, nthreads=nthreads))
    msg.config = _json(parts[3], "image config")
    if len(parts) == 5:
        msg.appendix = _json_or_bytes(parts[4])
    return msg


def parse(data: StreamData) -> Any:
    """StreamData (typ ``EIGER_LEGACY``) -> EigerLegacyHeader | EigerLegacyImage | EigerLegacyEnd.

    Keeps the old result shape (``info``/``appendix`` on headers; ``data`` with the raw
    ``buffer`` bytes and ``config`` on images, nothing decompressed) but accepts every part
    count seen in real streams: headers of 1, 2, 3, 8 or 9 parts and images of 4 or 5 parts.
    Use :func:`decode_image` for decompressed pixels. Errors are ProtocolError (a ValueError).
    """
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    frames = data.frames
    if not frames:
        raise ProtocolError("Eiger stream data without frames")
    try:
        packet = EigerLegacyPacket.validate_python(loads_json(frames[0], "Eiger part 0"))
    except ValidationError as exc:
        raise ProtocolError(f"invalid Eiger packet: {exc}") from None
    n = len(frames)
    if isinstance(packet, EigerLegacyHeader):
        if n not in HEADER_PARTS:
            raise ProtocolError(f"Eiger header has {n} parts, expected one of {HEADER_PARTS}")
        detail = getattr(packet, "header_detail", None)
        has_info = n >= 8 or (n >= 2 and detail in ("basic", "all"))
        if has_info:
            setattr(packet, "info", loads_json(frames[1], "Eiger header config"))
        if n in (9, 3) or (n == 2 and not has_info):
            setattr(packet, "appendix", _json_or_bytes(frames[-1]))
    elif isinstance(packet, EigerLegacyImage):
        if n not in IMAGE_PARTS:
            raise ProtocolError(f"Eiger image has {n} parts, expected 4 or 5")
        info = _json(frames[1], "image part 1")
        info["buffer"] = frame_bytes(frames[2])
        setattr(packet, "data", info)
        setattr(packet, "config", loads_json(frames[3], "Eiger image config"))
        if n == 5:
            setattr(packet, "appendix", _json_or_bytes(frames[4]))
    return packet


# ---------------------------------------------------------------- encode (synthetic sources)


def encode_header(
    series: int,
    config: dict[str, Any] | None = None,
    *,
    header_detail: str = "basic",
    flatfield: np.ndarray | None = None,
    pixel_mask: np.ndarray | None = None,
    countrate: np.ndarray | None = None,
    appendix: Any = None,
) -> list[bytes]:
    """A header message; ``all`` needs the three arrays (numpy order, written raw)."""
    parts = [_dumps({"header_detail": header_detail, "htype": "dheader-1.0", "series": series})]
    if header_detail in ("basic", "all"):
        parts.append(_dumps(config or {}))
    if header_detail == "all":
        for name, arr in (("dflatfield", flatfield), ("dpixelmask", pixel_mask), ("dcountrate_table", countrate)):
            if arr is None:
                raise ValueError(f"header_detail 'all' needs the {name[1:]} array")
            a = np.ascontiguousarray(arr)
            parts.append(_dumps({"htype": f"{name}-1.0", "shape": list(reversed(a.shape)), "type": a.dtype.name}))
            parts.append(a.tobytes())
    if appendix is not None:
        parts.append(appendix if isinstance(appendix, bytes) else json.dumps(appendix).encode())
    return parts


def encode_image(
    series: int,
    frame: int,
    array: np.ndarray,
    encoding: str | None = None,
    *,
    appendix: Any = None,
    real_time: int = 1_000_000,
    start_time: int = 0,
) -> list[bytes]:
    """A 4-part (5 with ``appendix``) image message; ``encoding`` defaults to bs<BITS>-lz4<.

    ``hash`` is the MD5 of the exact bytes of part 1, as DECTRIS computes it.
    """
    arr = np.asarray(array)
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
    enc = encoding or f"bs{8 * arr.dtype.itemsize}-lz4<"
    if enc.startswith("bs"):
        blob = bslz4_compress(arr)
    elif enc == "lz4<":
        blob = _lz4.lz4_compress(arr)
    elif enc == "<":
        blob = arr.tobytes()
    else:
        raise ValueError(f"unsupported encoding {enc!r}")
    dmeta = _dumps({"encoding": enc, "htype": "dimage_d-1.0", "shape": list(reversed(arr.shape)),
                    "size": len(blob), "type": arr.dtype.name})
    meta = _dumps({"frame": frame, "hash": hashlib.md5(dmeta).hexdigest(), "htype": "dimage-1.0", "series": series})
    config = _dumps({"htype": "dconfig-1.0", "real_time": real_time, "start_time": start_time,
                     "stop_time": start_time + real_time})
    parts = [meta, dmeta, blob, config]
    if appendix is not None:
        parts.append(appendix if isinstance(appendix, bytes) else json.dumps(appendix).encode())
    return parts


def encode_end(series: int) -> list[bytes]:
    """A one-part end message."""
    return [_dumps({"htype": "dseries_end-1.0", "series": series})]


# ---------------------------------------------------------------- cutter


class EigerLegacyCutter:
    """Cuts an Eiger v1 stream: header = START, image = DATA (``frame_number`` = ``frame``),
    end = END, checking part counts. Frames pass through unchanged. Not thread-safe."""

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self.gaps = FrameGapTracker(TYP)

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if not parts:
            raise ProtocolError("empty Eiger message")
        meta = _json(parts[0], "part 0")
        kind = classify(meta)
        n = len(parts)
        if kind is Kind.START:
            if n not in HEADER_PARTS:
                raise ProtocolError(f"Eiger header has {n} parts, expected one of {HEADER_PARTS}")
            self.gaps.reset()
            return [Unit(kind, list(parts), meta={"series": meta.get("series")})]
        if kind is Kind.END:
            if n != 1:
                raise ProtocolError(f"Eiger end has {n} parts, expected 1")
            return [Unit(kind, list(parts))]
        if n not in IMAGE_PARTS:
            raise ProtocolError(f"Eiger image has {n} parts, expected 4 or 5")
        frame = meta.get("frame")
        if type(frame) is not int:
            raise ProtocolError(f"Eiger image frame {frame!r} is not an integer")
        unit = Unit(kind, list(parts), frame_number=frame)
        self.gaps.check(frame, unit)
        return [unit]

    def reset(self) -> None:
        self.gaps.reset()


CUTTER = EigerLegacyCutter
"""The cutter ingesters use for this protocol."""
