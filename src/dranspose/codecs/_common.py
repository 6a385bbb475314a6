"""Buffer helpers shared by the codecs: flat byte views and output-array checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def byte_view(src: Any) -> memoryview:
    """A flat unsigned-byte memoryview of any C-contiguous buffer (``bytes``, ``zmq.Frame``,
    numpy array, ...) without copying."""
    mv = memoryview(src)
    if not mv.c_contiguous:
        raise ValueError("input buffer must be C-contiguous")
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    return mv


def frame_bytes(part: Any) -> bytes:
    """The bytes of one frame (``bytes``, ``zmq.Frame``, memoryview): a copy unless bytes."""
    return part if isinstance(part, bytes) else bytes(memoryview(part))


def default_block_elems(elem_size: int) -> int:
    """bitshuffle's default block size in elements (8192 bytes for sizes 1, 2, 4, 8)."""
    return max(128, (8192 // elem_size // 8) * 8)


def prepare_out(
    out: np.ndarray | None, dtype: np.dtype, shape: tuple[int, ...] | None, nbytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(result array, flat uint8 view to write into). ``out`` is checked, never reallocated."""
    if out is None:
        n = nbytes // dtype.itemsize
        res = np.empty(shape if shape is not None else (n,), dtype=dtype)
        if res.nbytes != nbytes:
            raise ValueError(f"shape {shape} of {dtype} does not hold {nbytes} bytes")
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError("out must be a numpy array")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writable C-contiguous array")
        if out.nbytes != nbytes:
            raise ValueError(f"out holds {out.nbytes} bytes, the data has {nbytes}")
        res = out
    return res, res.reshape(-1).view(np.uint8)


def nbytes_of(shape: tuple[int, ...] | None, dtype: np.dtype) -> int | None:
    return None if shape is None else math.prod(shape) * dtype.itemsize


MAX_RATIO = 256  # an LZ4 block expands at most ~255x


def check_ratio(nbytes: int, srclen: int, what: str) -> None:
    """Refuse, before allocating, an output no valid LZ4-based input of ``srclen`` bytes
    could produce (protects against absurd sizes in corrupt headers/JSON)."""
    from dranspose.errors import CorruptFrameError

    if nbytes > MAX_RATIO * srclen + 1024:
        raise CorruptFrameError(f"{what} claims {nbytes} bytes from a {srclen}-byte input", 0)


def norm_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def norm_threads(nthreads: int | None) -> int:
    """``None``: this process's thread budget (:mod:`dranspose.threads`: its share of the free
    cores, 1 when they are busy); an explicit count is capped at the CPUs we may run on."""
    from dranspose import threads

    if nthreads is None:
        return threads.budget()
    if nthreads < 1:
        raise ValueError("nthreads must be >= 1")
    return min(int(nthreads), threads.allowed_cpus())
