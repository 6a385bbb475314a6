# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Block-stream decoders over buffers: bitshuffle+LZ4 (HDF5 filter 32008, PROTOCOLS §1) and
HDF5-LZ4 (§2), plus bitshuffle/unshuffle.

Plain functions; outputs are caller-supplied writable byte buffers; the GIL is released
while decoding. With ``nthreads > 1`` blocks are shared out through an atomic counter to
the calling thread plus ``nthreads - 1`` pooled helper threads; the call returns as soon as
every block is done, so a helper that the OS schedules late (busy machine) costs nothing
(no fork-join barrier). Input from the wire is bounds-checked: corrupt or truncated data
raises ``CorruptFrameError`` with the absolute byte offset in ``src`` and never reads or
writes out of bounds. Thread-safe as long as concurrent calls use distinct outputs.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from libc.stdint cimport uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _fastpath.bitshuf cimport shuffle_block, unshuffle_block
from _fastpath.lz4dec cimport lz4_decode, lz4_error_text

from dranspose.errors import CorruptFrameError

cdef extern from *:
    """
    #include <sched.h>
    static inline Py_ssize_t dr_claim(Py_ssize_t* p) {
        return __atomic_fetch_add(p, 1, __ATOMIC_ACQ_REL);
    }
    static inline void dr_done(Py_ssize_t* p) { __atomic_fetch_add(p, 1, __ATOMIC_RELEASE); }
    static inline Py_ssize_t dr_load(Py_ssize_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void dr_yield(void) { sched_yield(); }
    """
    Py_ssize_t dr_claim(Py_ssize_t* p) nogil
    void dr_done(Py_ssize_t* p) nogil
    Py_ssize_t dr_load(Py_ssize_t* p) nogil
    void dr_yield() nogil

DEF MODE_BSLZ4 = 0
DEF MODE_HDF5LZ4 = 1
DEF ERR_NOMEM = -100


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef struct BlockJob:
    int mode
    const uint8_t* src
    uint8_t* dst
    Py_ssize_t* offs      # start of each compressed block in src
    Py_ssize_t* lens      # compressed length; on error: the error's absolute offset
    Py_ssize_t* errs      # 0 or an LZ4 error code per block
    Py_ssize_t nblocks
    Py_ssize_t full       # bslz4: number of full blocks (the rest is the partial one)
    Py_ssize_t last       # bslz4: elements in the partial block / hdf5: bytes in the last
    Py_ssize_t block_elems
    Py_ssize_t elem_size
    Py_ssize_t block_bytes
    Py_ssize_t next       # atomic: next block to claim
    Py_ssize_t done       # atomic: blocks finished


cdef void _run(BlockJob* job) noexcept nogil:
    """Claim and decode blocks until none is left (any thread, any number of times)."""
    cdef Py_ssize_t i, nelem, nb, errpos, rc
    cdef uint8_t* tmp = NULL
    if job.mode == MODE_BSLZ4:
        tmp = <uint8_t*>malloc(2 * job.block_bytes)
    while True:
        i = dr_claim(&job.next)
        if i >= job.nblocks:
            break
        errpos = 0
        if job.mode == MODE_BSLZ4:
            nelem = job.block_elems if i < job.full else job.last
            nb = nelem * job.elem_size
            if tmp == NULL:
                rc = ERR_NOMEM
            else:
                rc = lz4_decode(job.src + job.offs[i], job.lens[i], tmp, nb, &errpos)
                if rc == 0:
                    unshuffle_block(tmp, job.dst + i * job.block_bytes, nelem, job.elem_size,
                                    tmp + nb)
        else:
            nb = job.block_bytes if i < job.nblocks - 1 else job.last
            if job.lens[i] == nb:
                memcpy(job.dst + i * job.block_bytes, job.src + job.offs[i], nb)
                rc = 0
            else:
                rc = lz4_decode(job.src + job.offs[i], job.lens[i], job.dst + i * job.block_bytes,
                                nb, &errpos)
        if rc != 0:
            job.errs[i] = rc
            job.lens[i] = job.offs[i] + errpos
        dr_done(&job.done)
    free(tmp)


cdef class _Job:
    """Owns a BlockJob and its tables; helpers keep it alive until they have looked at it."""

    cdef BlockJob job
    cdef Py_ssize_t* tables

    def __cinit__(self, Py_ssize_t nblocks):
        self.tables = <Py_ssize_t*>malloc((3 * nblocks + 1) * sizeof(Py_ssize_t))
        if self.tables == NULL:
            raise MemoryError()
        self.job.offs = self.tables
        self.job.lens = self.tables + nblocks
        self.job.errs = self.tables + 2 * nblocks
        self.job.nblocks = nblocks
        self.job.next = 0
        self.job.done = 0

    def __dealloc__(self):
        free(self.tables)

    def help(self):
        with nogil:
            _run(&self.job)


_pool = None
_pool_pid = -1
_pool_lock = threading.Lock()


def _helpers():
    """The helper thread pool of this process (recreated after a fork)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        with _pool_lock:
            if _pool is None or _pool_pid != os.getpid():
                _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dranspose-decode")
                _pool_pid = os.getpid()
    return _pool


cdef int _execute(_Job j, int nthreads, str what) except -1:
    """Run the job on this thread plus helpers; raise the first block error."""
    cdef BlockJob* job = &j.job
    cdef Py_ssize_t i
    cdef int nh = min(nthreads, <int>job.nblocks, 9) - 1
    if nh > 0:
        pool = _helpers()
        for _ in range(nh):
            pool.submit(j.help)
    with nogil:
        _run(job)
        while dr_load(&job.done) < job.nblocks:
            dr_yield()
    for i in range(job.nblocks):
        if job.errs[i] == ERR_NOMEM:
            raise MemoryError()
        if job.errs[i] != 0:
            raise CorruptFrameError(f"{what} block {i}: " + lz4_error_text(<int>job.errs[i]).decode(),
                                    job.lens[i])
    return 0


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
    cdef _Job j = _Job(nblocks)
    cdef BlockJob* job = &j.job
    cdef Py_ssize_t pos = start, i, c
    # serial scan of the block table: every length checked against the input
    for i in range(nblocks):
        if srclen - pos < 4:
            raise CorruptFrameError("bslz4 stream truncated before a block length", pos)
        c = be32(sp + pos)
        pos += 4
        if c > srclen - pos:
            raise CorruptFrameError(f"bslz4 block of {c} bytes runs past the end", pos)
        job.offs[i] = pos
        job.lens[i] = c
        job.errs[i] = 0
        pos += c
    if srclen - pos != rest:
        raise CorruptFrameError(
            f"bslz4 stream has {srclen - pos} bytes after the last block, expected {rest}", pos)
    job.mode = MODE_BSLZ4
    job.src = sp
    job.dst = dp
    job.full = full
    job.last = last
    job.block_elems = block_elems
    job.elem_size = elem_size
    job.block_bytes = block_bytes
    if nblocks:
        _execute(j, nthreads, "bslz4")
    if rest:
        memcpy(dp + total - rest, sp + srclen - rest, rest)


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
    cdef _Job j = _Job(nblocks)
    cdef BlockJob* job = &j.job
    cdef Py_ssize_t pos = start, i, c
    for i in range(nblocks):
        if srclen - pos < 4:
            raise CorruptFrameError("HDF5-LZ4 stream truncated before a block length", pos)
        c = be32(sp + pos)
        pos += 4
        if c > srclen - pos:
            raise CorruptFrameError(f"HDF5-LZ4 block of {c} bytes runs past the end", pos)
        job.offs[i] = pos
        job.lens[i] = c
        job.errs[i] = 0
        pos += c
    if pos != srclen:
        raise CorruptFrameError(f"{srclen - pos} trailing bytes after the HDF5-LZ4 stream", pos)
    job.mode = MODE_HDF5LZ4
    job.src = sp
    job.dst = dp
    job.block_bytes = block
    job.last = total - (nblocks - 1) * block if nblocks else 0
    if nblocks:
        _execute(j, nthreads, "HDF5-LZ4")
