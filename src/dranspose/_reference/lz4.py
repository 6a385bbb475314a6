"""Pure-Python LZ4 *block* decoder and the HDF5-LZ4 framing (PROTOCOLS §2).

Contract (shared with ``_fastpath.lz4block``): input is any buffer, output a caller-supplied
writable byte buffer; every read and write is bounds-checked and corrupt input raises
:class:`~dranspose.errors.CorruptFrameError` with the absolute byte offset in ``src``.
"""

from __future__ import annotations

import numpy as np

from dranspose.errors import CorruptFrameError


def as_u8(buf: object, writable: bool = False) -> np.ndarray:
    """A flat uint8 view of any C-contiguous buffer (no copy)."""
    mv = memoryview(buf)  # type: ignore[arg-type]
    if not mv.c_contiguous:
        raise ValueError("buffer must be C-contiguous")
    arr = np.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv, dtype=np.uint8)
    if writable and not arr.flags.writeable:
        raise ValueError("output buffer is read-only")
    return arr


def lz4_block_decode(src: np.ndarray, start: int, end: int, dst: np.ndarray, dstart: int, dlen: int) -> None:
    """Decode the raw LZ4 block ``src[start:end]`` into exactly ``dst[dstart:dstart+dlen]``.

    The block must fill the output exactly and consume the input exactly.
    """
    ip = start
    op = dstart
    oend = dstart + dlen
    if end > len(src) or start > end:
        raise CorruptFrameError("LZ4 block extends past the end of the input", start)
    if dlen == 0 and end == start:
        return
    while True:
        if ip >= end:
            raise CorruptFrameError("LZ4 block truncated (expected a token)", ip)
        token = int(src[ip])
        ip += 1
        lit = token >> 4
        if lit == 15:
            while True:
                if ip >= end:
                    raise CorruptFrameError("LZ4 block truncated in a literal length", ip)
                b = int(src[ip])
                ip += 1
                lit += b
                if b != 255:
                    break
        if ip + lit > end:
            raise CorruptFrameError("LZ4 literals run past the end of the block", ip)
        if op + lit > oend:
            raise CorruptFrameError("LZ4 literals overflow the output", ip)
        dst[op : op + lit] = src[ip : ip + lit]
        ip += lit
        op += lit
        if ip == end:
            if op != oend:
                raise CorruptFrameError(
                    f"LZ4 block decoded to {op - dstart} bytes, expected {dlen}", ip
                )
            return
        if ip + 2 > end:
            raise CorruptFrameError("LZ4 block truncated in a match offset", ip)
        offset = int(src[ip]) | (int(src[ip + 1]) << 8)
        if offset == 0 or offset > op - dstart:
            raise CorruptFrameError(f"LZ4 match offset {offset} points before the output", ip)
        ip += 2
        mlen = (token & 15) + 4
        if (token & 15) == 15:
            while True:
                if ip >= end:
                    raise CorruptFrameError("LZ4 block truncated in a match length", ip)
                b = int(src[ip])
                ip += 1
                mlen += b
                if b != 255:
                    break
        if op + mlen > oend:
            raise CorruptFrameError("LZ4 match overflows the output", ip)
        ref = op - offset
        if offset >= mlen:
            dst[op : op + mlen] = dst[ref : ref + mlen]
        else:
            pattern = dst[ref:op].copy()
            reps = -(-mlen // offset)
            dst[op : op + mlen] = np.tile(pattern, reps)[:mlen]
        op += mlen


def lz4_block_decompress_into(src: object, dst: object) -> None:
    """Decode one whole raw LZ4 block ``src`` into all of ``dst`` (its exact size)."""
    s = as_u8(src)
    d = as_u8(dst, writable=True)
    lz4_block_decode(s, 0, len(s), d, 0, len(d))


def _be32(s: np.ndarray, pos: int) -> int:
    return int.from_bytes(s[pos : pos + 4].tobytes(), "big")


def hdf5lz4_decompress_into(src: object, dst: object, start: int = 12, nthreads: int = 1) -> None:
    """Decode the HDF5-LZ4 block stream (§2) that begins at ``src[start]`` into ``dst``.

    The caller has read the 12-byte header: ``len(dst)`` is the original size and the block
    size in bytes is ``src[8:12]``. A block whose compressed length equals its uncompressed
    length is stored raw. ``nthreads`` is accepted for signature parity and ignored.
    """
    s = as_u8(src)
    d = as_u8(dst, writable=True)
    if start < 12 or len(s) < 12:
        raise CorruptFrameError("HDF5-LZ4 buffer shorter than its 12-byte header", 0)
    block = _be32(s, 8)
    total = len(d)
    if total and block == 0:
        raise CorruptFrameError("HDF5-LZ4 block size is 0", 8)
    pos = start
    done = 0
    while done < total:
        blen = min(block, total - done)
        if pos + 4 > len(s):
            raise CorruptFrameError("HDF5-LZ4 stream truncated before a block length", pos)
        c = _be32(s, pos)
        pos += 4
        if pos + c > len(s):
            raise CorruptFrameError(f"HDF5-LZ4 block of {c} bytes runs past the end", pos)
        if c == blen:
            d[done : done + blen] = s[pos : pos + c]
        else:
            lz4_block_decode(s, pos, pos + c, d, done, blen)
        pos += c
        done += blen
    if pos != len(s):
        raise CorruptFrameError(f"{len(s) - pos} trailing bytes after the HDF5-LZ4 stream", pos)
