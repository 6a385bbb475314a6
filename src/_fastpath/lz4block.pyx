# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Raw LZ4 blocks and the HDF5-LZ4 framing (PROTOCOLS §2) over buffers.

Same contract as :mod:`_fastpath.bslz4`: caller-supplied output, GIL released, parallel
over blocks with ``nthreads > 1``, bounds-checked, CorruptFrameError with the byte offset.
"""

from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _fastpath.lz4dec cimport lz4_decode, lz4_error_text

from dranspose.errors import CorruptFrameError


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


def lz4_block_decompress_into(const uint8_t[::1] src, uint8_t[::1] dst):
    """Decode one raw LZ4 block ``src`` into exactly all of ``dst``."""
    cdef Py_ssize_t errpos = 0, rc
    cdef Py_ssize_t srclen = src.shape[0], dstlen = dst.shape[0]
    cdef const uint8_t* sp = &src[0] if srclen else NULL
    cdef uint8_t* dp = &dst[0] if dstlen else NULL
    if srclen == 0 and dstlen:
        raise CorruptFrameError("LZ4 block truncated (expected a token)", 0)
    with nogil:
        rc = lz4_decode(sp, srclen, dp, dstlen, &errpos)
    if rc != 0:
        raise CorruptFrameError(lz4_error_text(<int>rc).decode(), errpos)


def hdf5lz4_decompress_into(const uint8_t[::1] src, uint8_t[::1] dst, Py_ssize_t start=12,
                            int nthreads=1):
    """Decode the HDF5-LZ4 block stream at ``src[start]`` into all of ``dst``; the block size
    is read from ``src[8:12]``. A block whose stored length equals its size is raw."""
    cdef Py_ssize_t srclen = src.shape[0], total = dst.shape[0]
    if srclen < 12 or start < 12 or start > srclen:
        raise CorruptFrameError("HDF5-LZ4 buffer shorter than its 12-byte header", 0)
    cdef const uint8_t* sp = &src[0]
    cdef uint8_t* dp = &dst[0] if total else NULL
    cdef Py_ssize_t block = be32(sp + 8)
    if total and block == 0:
        raise CorruptFrameError("HDF5-LZ4 block size is 0", 8)
    cdef Py_ssize_t nblocks = (total + block - 1) // block if total else 0
    cdef Py_ssize_t* offs = <Py_ssize_t*>malloc((3 * nblocks + 1) * sizeof(Py_ssize_t))
    if offs == NULL:
        raise MemoryError()
    cdef Py_ssize_t* lens = offs + nblocks
    cdef Py_ssize_t* errs = offs + 2 * nblocks
    cdef Py_ssize_t pos = start, i, c, blen, errpos = 0
    cdef int nt = nthreads if nthreads > 0 else 1
    try:
        for i in range(nblocks):
            if srclen - pos < 4:
                raise CorruptFrameError("HDF5-LZ4 stream truncated before a block length", pos)
            c = be32(sp + pos)
            pos += 4
            if c > srclen - pos:
                raise CorruptFrameError(f"HDF5-LZ4 block of {c} bytes runs past the end", pos)
            offs[i] = pos
            lens[i] = c
            errs[i] = 0
            pos += c
        if pos != srclen:
            raise CorruptFrameError(f"{srclen - pos} trailing bytes after the HDF5-LZ4 stream", pos)
        with nogil:
            for i in prange(nblocks, num_threads=nt, schedule="dynamic", chunksize=4):
                blen = block if i < nblocks - 1 else total - (nblocks - 1) * block
                if lens[i] == blen:
                    memcpy(dp + i * block, sp + offs[i], blen)
                else:
                    errpos = 0
                    errs[i] = lz4_decode(sp + offs[i], lens[i], dp + i * block, blen, &errpos)
                    if errs[i] != 0:
                        lens[i] = offs[i] + errpos
        for i in range(nblocks):
            if errs[i] != 0:
                raise CorruptFrameError(
                    f"HDF5-LZ4 block {i}: " + lz4_error_text(<int>errs[i]).decode(), lens[i])
    finally:
        free(offs)
