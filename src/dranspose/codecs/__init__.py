"""Public codecs: bitshuffle+LZ4 (HDF5 filter 32008 framing) and HDF5-LZ4.

Stable names used by users and external benchmarks::

    bslz4_decompress(src, dtype, shape=None, *, out=None, nthreads=None) -> ndarray
    bslz4_compress(array, block_size=0) -> bytes
    lz4_decompress(src, dtype=None, shape=None, *, out=None, nthreads=None) -> ndarray
    lz4_compress(array, block_size=0) -> bytes

Decompression runs in :mod:`dranspose.backend` (compiled unless ``DRANSPOSE_BACKEND=python``).
Corrupt input raises :class:`CorruptFrameError` (a ``ValueError``) with the byte offset.
"""

from dranspose.codecs.bslz4 import bslz4_compress, bslz4_decompress
from dranspose.codecs.lz4 import lz4_compress, lz4_decompress
from dranspose.errors import CorruptFrameError

__all__ = [
    "CorruptFrameError",
    "bslz4_compress",
    "bslz4_decompress",
    "lz4_compress",
    "lz4_decompress",
]
