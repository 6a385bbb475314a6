# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""One raw LZ4 block over buffers (bounds-checked, GIL released).

The HDF5-LZ4 framed stream decoder lives in :mod:`_fastpath.bslz4` with the other block
streams (it shares their parallel block machinery) and is re-exported here.
"""

from libc.stdint cimport uint8_t

from _fastpath.lz4dec cimport lz4_decode, lz4_error_text

from dranspose.errors import CorruptFrameError

from _fastpath.bslz4 import hdf5lz4_decompress_into  # noqa: F401  (re-export)


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
