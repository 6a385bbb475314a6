"""NumPy reference of bitshuffle and the bitshuffle+LZ4 block stream (PROTOCOLS §1).

Contract (shared with ``_fastpath.bslz4``): plain functions over buffers; output buffers are
supplied by the caller; corrupt input raises :class:`~dranspose.errors.CorruptFrameError`
with the absolute byte offset in ``src``. ``nthreads`` is accepted and ignored here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dranspose._reference.lz4 import as_u8, lz4_block_decode
from dranspose.errors import CorruptFrameError


def _shuffle_block(block: np.ndarray, elem_size: int) -> np.ndarray:
    """Bit-transpose one block (n elements, n % 8 == 0) of raw bytes: elements -> bit planes."""
    n = len(block) // elem_size
    bits = np.unpackbits(block.reshape(n, elem_size), axis=1, bitorder="little")  # (n, 8s)
    return np.packbits(bits.T, axis=1, bitorder="little").reshape(-1)  # (8s, n/8)


def _unshuffle_block(block: np.ndarray, elem_size: int) -> np.ndarray:
    """Inverse of :func:`_shuffle_block`: bit planes -> elements."""
    n = len(block) // elem_size
    bits = np.unpackbits(block.reshape(8 * elem_size, n // 8), axis=1, bitorder="little")  # (8s, n)
    return np.packbits(bits.T, axis=1, bitorder="little").reshape(-1)  # (n, s)


def block_plan(n: int, block_elems: int) -> list[tuple[int, int]]:
    """(first element, element count) of each shuffled block; the ``n % 8`` rest is raw."""
    plan = [(i * block_elems, block_elems) for i in range(n // block_elems)]
    last = (n % block_elems) - (n % 8)
    if last > 0:
        plan.append((n - n % block_elems, last))
    return plan


def _check(elem_size: int, block_elems: int, nbytes: int) -> None:
    if elem_size <= 0 or nbytes % elem_size:
        raise ValueError(f"{nbytes} bytes is not a whole number of {elem_size}-byte elements")
    if block_elems <= 0 or block_elems % 8:
        raise ValueError(f"block of {block_elems} elements is not a positive multiple of 8")


def _transpose_into(src: object, dst: object, elem_size: int, block_elems: int, block: Any) -> None:
    """Apply ``block`` (shuffle or unshuffle of one block) to all of ``src`` into ``dst``
    (same size) block by block; the trailing ``n % 8`` elements are copied."""
    s = as_u8(src)
    d = as_u8(dst, writable=True)
    if len(d) != len(s):
        raise ValueError("src and dst sizes differ")
    _check(elem_size, block_elems, len(s))
    n = len(s) // elem_size
    for first, count in block_plan(n, block_elems):
        a, b = first * elem_size, (first + count) * elem_size
        d[a:b] = block(s[a:b], elem_size)
    rest = (n % 8) * elem_size
    if rest:
        d[len(d) - rest :] = s[len(s) - rest :]


def bitshuffle_into(src: object, dst: object, elem_size: int, block_elems: int) -> None:
    """Bitshuffle all of ``src`` into ``dst`` (same size) block by block; the rest is copied."""
    _transpose_into(src, dst, elem_size, block_elems, _shuffle_block)


def bitunshuffle_into(src: object, dst: object, elem_size: int, block_elems: int) -> None:
    """Inverse of :func:`bitshuffle_into`."""
    _transpose_into(src, dst, elem_size, block_elems, _unshuffle_block)


def bslz4_decompress_into(
    src: object, dst: object, elem_size: int, block_bytes: int, start: int = 12, nthreads: int = 1
) -> None:
    """Decode the bslz4 block stream that begins at ``src[start]`` into all of ``dst``.

    ``len(dst)`` is the uncompressed size; ``block_bytes`` the block size in bytes (a positive
    multiple of ``8 * elem_size``). The stream must end exactly at the end of ``src``.
    """
    s = as_u8(src)
    d = as_u8(dst, writable=True)
    if block_bytes <= 0 or block_bytes % (8 * elem_size):
        raise CorruptFrameError(
            f"bslz4 block size {block_bytes} is not a positive multiple of {8 * elem_size}", 8
        )
    _check(elem_size, block_bytes // elem_size, len(d))
    n = len(d) // elem_size
    pos = start
    plan = block_plan(n, block_bytes // elem_size) if n // (block_bytes // elem_size) <= len(s) // 4 else None
    if plan is None or len(plan) > (len(s) - start) // 4:  # each block costs its 4-byte length
        raise CorruptFrameError(f"bslz4 stream of {len(s) - start} bytes cannot hold its blocks", start)
    tmp = np.empty(min(block_bytes, len(d)), dtype=np.uint8)  # no block is larger than the output
    for first, count in plan:
        if pos + 4 > len(s):
            raise CorruptFrameError("bslz4 stream truncated before a block length", pos)
        c = int.from_bytes(s[pos : pos + 4].tobytes(), "big")
        pos += 4
        if c > len(s) - pos:
            raise CorruptFrameError(f"bslz4 block of {c} bytes runs past the end", pos)
        nb = count * elem_size
        lz4_block_decode(s, pos, pos + c, tmp, 0, nb)
        a = first * elem_size
        d[a : a + nb] = _unshuffle_block(tmp[:nb], elem_size)
        pos += c
    rest = (n % 8) * elem_size
    if len(s) - pos != rest:
        raise CorruptFrameError(
            f"bslz4 stream has {len(s) - pos} bytes after the last block, expected {rest}", pos
        )
    if rest:
        d[len(d) - rest :] = s[pos:]
