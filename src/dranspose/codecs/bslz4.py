"""Bitshuffle + LZ4 with the HDF5 filter-32008 framing (PROTOCOLS §1).

Decompression runs in the selected backend (compiled: GIL released, block-parallel);
compression shuffles in the backend and LZ4-compresses each block with python-lz4.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lz4.block
import numpy as np

from dranspose import backend as _backend_mod
from dranspose.backend import Backend
from dranspose.codecs._common import (
    byte_view,
    check_ratio,
    default_block_elems,
    norm_shape,
    norm_threads,
    prepare_out,
)
from dranspose.errors import CorruptFrameError

logger = logging.getLogger(__name__)

HEADER_SIZE = 12


def read_header(src: Any) -> tuple[int, int]:
    """(uncompressed size in bytes, block size in bytes) from a blob's 12-byte header."""
    mv = byte_view(src)
    if len(mv) < HEADER_SIZE:
        raise CorruptFrameError(f"bslz4 blob of {len(mv)} bytes is shorter than its header", 0)
    return int.from_bytes(mv[0:8], "big"), int.from_bytes(mv[8:12], "big")


def has_header(mv: memoryview, elem_size: int, expected_nbytes: int | None) -> bool:
    """§1.4: does the blob start with a plausible 12-byte header (size, block size)?"""
    if len(mv) < HEADER_SIZE:
        return False
    nbytes = int.from_bytes(mv[0:8], "big")
    block = int.from_bytes(mv[8:12], "big")
    if block <= 0 or block % (8 * elem_size):
        return False
    if expected_nbytes is not None:
        return nbytes == expected_nbytes
    return nbytes % elem_size == 0


def decompress(
    be: Backend,
    src: Any,
    dtype: Any,
    shape: Any = None,
    *,
    out: np.ndarray | None = None,
    nthreads: int | None = None,
) -> np.ndarray:
    """:func:`bslz4_decompress` on an explicit backend (used by the conformance tests)."""
    dt = np.dtype(dtype)
    s = norm_shape(shape)
    mv = byte_view(src)
    expected = math.prod(s) * dt.itemsize if s is not None else (out.nbytes if out is not None else None)
    if has_header(mv, dt.itemsize, expected):
        nbytes = int.from_bytes(mv[0:8], "big")
        block_bytes = int.from_bytes(mv[8:12], "big")
        start = HEADER_SIZE
    else:
        if expected is None:
            raise CorruptFrameError(
                "bslz4 blob has no valid 12-byte header; pass shape= for headerless data", 0
            )
        nbytes = expected
        block_bytes = default_block_elems(dt.itemsize) * dt.itemsize
        start = 0
    check_ratio(nbytes, len(mv), "bslz4 blob")
    if nbytes % dt.itemsize:
        raise CorruptFrameError(f"bslz4 size {nbytes} is not a multiple of {dt.itemsize}", 0)
    res, flat = prepare_out(out, dt, s, nbytes)
    be.bslz4_decompress_into(mv, flat, dt.itemsize, block_bytes, start, norm_threads(nthreads))
    return res


def compress(be: Backend, array: Any, block_size: int = 0) -> bytes:
    """:func:`bslz4_compress` on an explicit backend."""
    arr = np.ascontiguousarray(array)
    s = arr.dtype.itemsize
    block_elems = default_block_elems(s) if block_size == 0 else block_size // s
    if block_size < 0 or block_size % s or block_elems % 8 or block_elems <= 0:
        raise ValueError(f"block_size {block_size} must be a positive multiple of {8 * s} bytes")
    flat = arr.reshape(-1).view(np.uint8)
    shuffled = np.empty_like(flat)
    be.bitshuffle_into(flat, shuffled, s, block_elems)
    n = arr.size
    block_bytes = block_elems * s
    parts = [(n * s).to_bytes(8, "big") + block_bytes.to_bytes(4, "big")]
    full = n // block_elems
    last = (n % block_elems) - (n % 8)
    bounds = [(i * block_bytes, block_bytes) for i in range(full)]
    if last > 0:
        bounds.append((full * block_bytes, last * s))
    view = memoryview(shuffled)  # type: ignore[arg-type]
    for off, length in bounds:
        comp = lz4.block.compress(view[off : off + length], store_size=False)
        parts.append(len(comp).to_bytes(4, "big"))
        parts.append(comp)
    rest = (n % 8) * s
    if rest:
        parts.append(view[len(view) - rest :].tobytes())
    return b"".join(parts)


def bslz4_decompress(
    src: Any,
    dtype: Any,
    shape: Any = None,
    *,
    out: np.ndarray | None = None,
    nthreads: int | None = None,
) -> np.ndarray:
    """Decompress a bitshuffle+LZ4 blob into a numpy array.

    ``src`` is any buffer (``bytes``, ``zmq.Frame``, memoryview, numpy array); it is only read.
    With the 12-byte header (detected per PROTOCOLS §1.4) the size comes from it; without it
    ``shape`` (or ``out``) is required and the default 8192-byte block size is assumed.
    ``dtype`` gives the element size. ``shape=None`` returns a flat array. With ``out`` (a
    writable C-contiguous array of the right byte size) the data is written there and ``out``
    itself is returned. ``nthreads=None`` uses the process's thread budget (its share of the free
    cores, :mod:`dranspose.threads`); more threads decode blocks in parallel.
    Corrupt or truncated input raises :class:`~dranspose.errors.CorruptFrameError`.
    """
    return decompress(_backend_mod.active, src, dtype, shape, out=out, nthreads=nthreads)


def bslz4_compress(array: Any, block_size: int = 0) -> bytes:
    """Bitshuffle+LZ4-compress ``array`` (C order) into a blob with the 12-byte header.

    ``block_size`` is in bytes (0 = 8192 for element sizes up to 8) and must be a multiple of
    ``8 * itemsize``. Returns new bytes; the input is not modified.
    """
    return compress(_backend_mod.active, array, block_size)
