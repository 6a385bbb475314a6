"""Decode EIGER_LEGACY (SIMPLON stream v1) messages into numpy arrays, for the example workers.

Decompression tries, in order: ``dranspose.codecs.bslz4_decompress``, the PyPI ``bitshuffle``
package, and a small NumPy + ``lz4.block`` implementation (slow, always available).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


def _json(part: Any) -> dict[str, Any]:
    raw = part.bytes if hasattr(part, "bytes") else bytes(part)
    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("EIGER_LEGACY part is not a JSON object")
    return obj


def _buffer(part: Any) -> memoryview:
    return memoryview(part.buffer if hasattr(part, "buffer") else part).cast("B")


def bitunshuffle_numpy(shuffled: np.ndarray, elem_size: int) -> np.ndarray:
    """Inverse bit transposition of one bitshuffle block (``n`` a multiple of 8 elements)."""
    n = shuffled.size * 8 // (8 * elem_size)
    planes = np.unpackbits(shuffled.reshape(8 * elem_size, n // 8), axis=1, bitorder="little")
    return np.packbits(planes.T, axis=1, bitorder="little").reshape(-1)


def bslz4_numpy(blob: memoryview, dtype: np.dtype, count: int) -> np.ndarray:
    """Decode bitshuffle-LZ4 with the 12-byte header (HDF5 filter 32008 framing) in NumPy."""
    import lz4.block

    raw = bytes(blob)
    s = dtype.itemsize
    if len(raw) < 12:
        raise ValueError("bslz4 blob shorter than its 12-byte header")
    total = int.from_bytes(raw[:8], "big")
    block = int.from_bytes(raw[8:12], "big") // s
    if total != count * s or block <= 0 or block % 8:
        raise ValueError(f"bslz4 header mismatch: {total} bytes, block {block} elements")
    out = np.empty(count * s, dtype=np.uint8)
    pos, done = 12, 0
    while count - done >= 8:
        n = min(block, (count - done) // 8 * 8)
        clen = int.from_bytes(raw[pos:pos + 4], "big")
        pos += 4
        plain = lz4.block.decompress(raw[pos:pos + clen], uncompressed_size=n * s)
        pos += clen
        out[done * s:(done + n) * s] = bitunshuffle_numpy(np.frombuffer(plain, np.uint8), s)
        done += n
    out[done * s:] = np.frombuffer(raw[pos:pos + (count - done) * s], np.uint8)
    return out.view(dtype)


def bslz4_decompress(blob: Any, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """bitshuffle-LZ4 blob -> array of ``shape`` (a new array)."""
    try:
        from dranspose.codecs import bslz4_decompress as fast
    except ImportError:
        fast = None
    if fast is not None:
        return fast(blob, dtype, shape)
    try:
        import bitshuffle
    except ImportError:
        bitshuffle = None
    mv = _buffer(blob)
    count = int(np.prod(shape))
    if bitshuffle is not None:
        block = int.from_bytes(bytes(mv[8:12]), "big") // dtype.itemsize
        payload = np.frombuffer(mv[12:], dtype=np.uint8)
        return bitshuffle.decompress_lz4(payload, shape, dtype, block)
    return bslz4_numpy(mv, dtype, count).reshape(shape)


def htype(parts: Sequence[Any]) -> str:
    """The ``htype`` of a message: ``dheader-1.0``, ``dimage-1.0`` or ``dseries_end-1.0``."""
    if not parts:
        raise ValueError("empty EIGER_LEGACY message")
    return str(_json(parts[0]).get("htype", ""))


def decode_image(parts: Sequence[Any]) -> tuple[int, np.ndarray]:
    """An image message (4 or 5 parts) -> (frame number, 2D array in numpy (rows, cols) order)."""
    if len(parts) < 3:
        raise ValueError(f"EIGER_LEGACY image needs at least 3 parts, got {len(parts)}")
    head = _json(parts[0])
    info = _json(parts[1])
    shape = tuple(int(x) for x in reversed(info["shape"]))  # [X, Y] on the wire
    dtype = np.dtype(info["type"]).newbyteorder("<")
    encoding = info.get("encoding", "<")
    if "lz4" in encoding and encoding.startswith("bs"):
        image = bslz4_decompress(parts[2], dtype, shape)
    elif encoding == "<":
        image = np.frombuffer(_buffer(parts[2]), dtype=dtype).reshape(shape)
    else:
        raise ValueError(f"unsupported EIGER_LEGACY encoding {encoding!r}")
    return int(head.get("frame", -1)), image


def decode_header(parts: Sequence[Any]) -> tuple[dict[str, Any], np.ndarray | None]:
    """A header message -> (detector config, pixel mask in numpy order or None)."""
    config: dict[str, Any] = _json(parts[1]) if len(parts) > 1 else {}
    mask = None
    for i in range(2, len(parts) - 1):
        try:
            meta = _json(parts[i])
        except (ValueError, UnicodeDecodeError):
            continue
        if meta.get("htype") == "dpixelmask-1.0":
            shape = tuple(int(x) for x in reversed(meta["shape"]))
            mask = np.frombuffer(_buffer(parts[i + 1]), dtype=np.dtype(meta["type"]).newbyteorder("<"))
            mask = mask.reshape(shape)
    return config, mask
