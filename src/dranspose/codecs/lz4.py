"""LZ4 with the HDF5-LZ4 framing (PROTOCOLS §2; DECTRIS stream v2 algorithm ``"lz4"``)."""

from __future__ import annotations

import math
from typing import Any

import lz4.block
import numpy as np

from dranspose import backend as _backend_mod
from dranspose.backend import Backend
from dranspose.codecs._common import byte_view, check_ratio, norm_shape, norm_threads, prepare_out
from dranspose.errors import CorruptFrameError

HEADER_SIZE = 12
DEFAULT_BLOCK = 8192


def has_header(mv: memoryview, expected_nbytes: int | None) -> bool:
    """Does ``mv`` start with a plausible HDF5-LZ4 header (size, nonzero block size)?"""
    if len(mv) < HEADER_SIZE:
        return False
    nbytes = int.from_bytes(mv[0:8], "big")
    block = int.from_bytes(mv[8:12], "big")
    if block == 0 and nbytes:
        return False
    return expected_nbytes is None or nbytes == expected_nbytes


def decompress(
    be: Backend,
    src: Any,
    dtype: Any = None,
    shape: Any = None,
    *,
    out: np.ndarray | None = None,
    nthreads: int | None = None,
) -> np.ndarray:
    """:func:`lz4_decompress` on an explicit backend."""
    dt = np.dtype(np.uint8 if dtype is None else dtype)
    s = norm_shape(shape)
    mv = byte_view(src)
    if len(mv) < HEADER_SIZE:
        raise CorruptFrameError(f"LZ4 blob of {len(mv)} bytes is shorter than its header", 0)
    nbytes = int.from_bytes(mv[0:8], "big")
    if nbytes % dt.itemsize:
        raise CorruptFrameError(f"LZ4 size {nbytes} is not a multiple of {dt.itemsize}", 0)
    check_ratio(nbytes, len(mv), "LZ4 blob")
    expected = math.prod(s) * dt.itemsize if s is not None else (out.nbytes if out is not None else None)
    if expected is not None and expected != nbytes:
        raise CorruptFrameError(f"LZ4 header says {nbytes} bytes, the array needs {expected}", 0)
    res, flat = prepare_out(out, dt, s, nbytes)
    be.hdf5lz4_decompress_into(mv, flat, HEADER_SIZE, norm_threads(nthreads))
    return res


def compress(array: Any, block_size: int = 0) -> bytes:
    """:func:`lz4_compress` (pure python-lz4; no backend involved)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    block = DEFAULT_BLOCK if block_size == 0 else int(block_size)
    if block <= 0:
        raise ValueError("block_size must be positive")
    view = memoryview(flat)  # type: ignore[arg-type]
    parts = [len(flat).to_bytes(8, "big") + block.to_bytes(4, "big")]
    for off in range(0, len(flat), block):
        chunk = view[off : off + block]
        comp = lz4.block.compress(chunk, store_size=False)
        if len(comp) >= len(chunk):
            parts.append(len(chunk).to_bytes(4, "big"))
            parts.append(chunk.tobytes())
        else:
            parts.append(len(comp).to_bytes(4, "big"))
            parts.append(comp)
    return b"".join(parts)


def lz4_decompress(
    src: Any,
    dtype: Any = None,
    shape: Any = None,
    *,
    out: np.ndarray | None = None,
    nthreads: int | None = None,
) -> np.ndarray:
    """Decompress an HDF5-LZ4 framed blob (12-byte header) into a numpy array.

    ``dtype=None`` gives uint8; ``shape=None`` a flat array; ``out`` is filled and returned.
    ``src`` is only read. Corrupt input raises :class:`~dranspose.errors.CorruptFrameError`.
    """
    return decompress(_backend_mod.active, src, dtype, shape, out=out, nthreads=nthreads)


def lz4_compress(array: Any, block_size: int = 0) -> bytes:
    """HDF5-LZ4 framed compression of ``array``'s bytes (C order); ``block_size`` in bytes,
    0 = 8192. Incompressible blocks are stored raw, as the framing allows."""
    return compress(array, block_size)


def lz4_raw_decompress(be: Backend, src: Any, nbytes: int, out: np.ndarray | None = None) -> np.ndarray:
    """Decode one raw LZ4 block (no framing) of exactly ``nbytes`` output bytes."""
    mv = byte_view(src)
    check_ratio(nbytes, len(mv), "LZ4 block")
    res, flat = prepare_out(out, np.dtype(np.uint8) if out is None else out.dtype, None, nbytes)
    be.lz4_block_decompress_into(mv, flat)
    return res
