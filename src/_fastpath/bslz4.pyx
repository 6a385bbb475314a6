# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Bitshuffle + LZ4 (HDF5 filter 32008 block stream, PROTOCOLS §1) over buffers.

Plain functions; outputs are caller-supplied writable byte buffers; the GIL is released
while decoding; blocks are decoded in parallel with ``nthreads > 1`` (OpenMP). Input from
the wire is bounds-checked: corrupt or truncated data raises ``CorruptFrameError`` with the
absolute byte offset in ``src`` and never reads or writes out of bounds. Thread-safe as long
as concurrent calls use distinct outputs.
"""

from cython.parallel cimport parallel, prange
from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _fastpath.bitshuf cimport shuffle_block, unshuffle_block
from _fastpath.lz4dec cimport lz4_decode, lz4_error_text

from dranspose.errors import CorruptFrameError


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef int _check_sizes(Py_ssize_t nbytes, Py_ssize_t elem_size, Py_ssize_t block_elems) except -1:
    if elem_size <= 0 or nbytes % elem_size:
        raise ValueError(f"{nbytes} bytes is not a whole number of {elem_size}-byte elements")
    if block_elems <= 0 or block_elems % 8:
        raise ValueError(f"block of {block_elems} elements is not a positive multiple of 8")
    return 0


def _transpose_all(const uint8_t[::1] src, uint8_t[::1] dst, Py_ssize_t elem_size,
                   Py_ssize_t block_elems, bint forward):
    if src.shape[0] != dst.shape[0]:
        raise ValueError("src and dst sizes differ")
    _check_sizes(src.shape[0], elem_size, block_elems)
    cdef Py_ssize_t n = src.shape[0] // elem_size
    cdef Py_ssize_t first = 0, count, rest = (n % 8) * elem_size, total = src.shape[0]
    cdef const uint8_t* sp = &src[0] if total else NULL
    cdef uint8_t* dp = &dst[0] if total else NULL
    cdef uint8_t* scratch = <uint8_t*>malloc(block_elems * elem_size)
    if scratch == NULL:
        raise MemoryError()
    with nogil:
        while first + 8 <= n:
            count = block_elems if n - first >= block_elems else (n - first) - (n - first) % 8
            if forward:
                shuffle_block(sp + first * elem_size, dp + first * elem_size, count, elem_size)
            else:
                unshuffle_block(sp + first * elem_size, dp + first * elem_size, count, elem_size,
                                scratch)
            first += count
        if rest:
            memcpy(dp + total - rest, sp + total - rest, rest)
    free(scratch)


def bitshuffle_into(const uint8_t[::1] src, uint8_t[::1] dst, Py_ssize_t elem_size,
                    Py_ssize_t block_elems):
    """Bitshuffle ``src`` into ``dst`` (same size) in blocks of ``block_elems`` elements; the
    last partial block is rounded down to 8 elements and the ``n % 8`` rest copied raw."""
    _transpose_all(src, dst, elem_size, block_elems, True)


def bitunshuffle_into(const uint8_t[::1] src, uint8_t[::1] dst, Py_ssize_t elem_size,
                      Py_ssize_t block_elems):
    """Inverse of :func:`bitshuffle_into`."""
    _transpose_all(src, dst, elem_size, block_elems, False)


cdef Py_ssize_t _decode_one(const uint8_t* src, Py_ssize_t off, Py_ssize_t clen, uint8_t* dst,
                            Py_ssize_t nb, Py_ssize_t n, Py_ssize_t s, uint8_t* tmp,
                            Py_ssize_t* errpos) noexcept nogil:
    """Decode one block into tmp, unshuffle into dst; returns 0 or an LZ4 error code."""
    cdef Py_ssize_t rc = lz4_decode(src + off, clen, tmp, nb, errpos)
    if rc != 0:
        errpos[0] += off
        return rc
    unshuffle_block(tmp, dst, n, s, tmp + nb)
    return 0


def bslz4_decompress_into(const uint8_t[::1] src, uint8_t[::1] dst, Py_ssize_t elem_size,
                          Py_ssize_t block_bytes, Py_ssize_t start=12, int nthreads=1):
    """Decode the bslz4 block stream starting at ``src[start]`` into all of ``dst``.

    ``len(dst)`` is the uncompressed size; ``block_bytes`` the block size in bytes, a
    positive multiple of ``8 * elem_size``. The stream must end exactly at the end of ``src``
    (the ``n % 8`` leftover elements stored raw). Raises CorruptFrameError.
    """
    cdef Py_ssize_t srclen = src.shape[0], total = dst.shape[0]
    if elem_size <= 0 or block_bytes <= 0 or block_bytes % (8 * elem_size):
        raise CorruptFrameError(
            f"bslz4 block size {block_bytes} is not a positive multiple of {8 * elem_size}", 8)
    _check_sizes(total, elem_size, block_bytes // elem_size)
    if start < 0 or start > srclen:
        raise ValueError("start outside src")
    cdef Py_ssize_t n = total // elem_size, block_elems = block_bytes // elem_size
    cdef Py_ssize_t full = n // block_elems
    cdef Py_ssize_t last = (n % block_elems) - (n % 8)
    cdef Py_ssize_t nblocks = full + (1 if last > 0 else 0)
    cdef Py_ssize_t rest = (n % 8) * elem_size
    cdef const uint8_t* sp = &src[0] if srclen else NULL
    cdef uint8_t* dp = &dst[0] if total else NULL
    cdef Py_ssize_t* offs = <Py_ssize_t*>malloc((3 * nblocks + 1) * sizeof(Py_ssize_t))
    if offs == NULL:
        raise MemoryError()
    cdef Py_ssize_t* lens = offs + nblocks
    cdef Py_ssize_t* errs = offs + 2 * nblocks
    cdef Py_ssize_t pos = start, i, c, nelem, bad = -1, errpos = 0
    cdef uint8_t* tmp
    cdef int nt = nthreads if nthreads > 0 else 1
    try:
        # serial scan of the block table: every length checked against the input
        for i in range(nblocks):
            if srclen - pos < 4:
                raise CorruptFrameError("bslz4 stream truncated before a block length", pos)
            c = be32(sp + pos)
            pos += 4
            if c > srclen - pos:
                raise CorruptFrameError(f"bslz4 block of {c} bytes runs past the end", pos)
            offs[i] = pos
            lens[i] = c
            errs[i] = 0
            pos += c
        if srclen - pos != rest:
            raise CorruptFrameError(
                f"bslz4 stream has {srclen - pos} bytes after the last block, expected {rest}", pos)
        if nblocks:
            if nt == 1 or nblocks == 1:
                tmp = <uint8_t*>malloc(2 * block_bytes)
                if tmp == NULL:
                    raise MemoryError()
                with nogil:
                    for i in range(nblocks):
                        nelem = block_elems if i < full else last
                        errs[i] = _decode_one(sp, offs[i], lens[i], dp + i * block_bytes,
                                              nelem * elem_size, nelem, elem_size, tmp, &errpos)
                        if errs[i] != 0:
                            lens[i] = errpos
                            break
                free(tmp)
            else:
                with nogil, parallel(num_threads=nt):
                    tmp = <uint8_t*>malloc(2 * block_bytes)
                    for i in prange(nblocks, schedule="dynamic", chunksize=4):
                        if tmp == NULL:
                            errs[i] = -100
                        else:
                            nelem = block_elems if i < full else last
                            errpos = 0
                            errs[i] = _decode_one(sp, offs[i], lens[i], dp + i * block_bytes,
                                                  nelem * elem_size, nelem, elem_size, tmp,
                                                  &errpos)
                            if errs[i] != 0:
                                lens[i] = errpos
                    free(tmp)
            for i in range(nblocks):
                if errs[i] == -100:
                    raise MemoryError()
                if errs[i] != 0:
                    raise CorruptFrameError(
                        f"bslz4 block {i}: " + lz4_error_text(<int>errs[i]).decode(), lens[i])
        if rest:
            memcpy(dp + total - rest, sp + srclen - rest, rest)
    finally:
        free(offs)
