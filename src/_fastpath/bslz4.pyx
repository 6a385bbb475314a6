# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Block-stream decoders over buffers: bitshuffle+LZ4 (HDF5 filter 32008, PROTOCOLS §1) and
HDF5-LZ4 (§2), plus bitshuffle/unshuffle.

Plain functions; outputs are caller-supplied writable byte buffers; the GIL is released
while decoding. With ``nthreads > 1`` blocks are shared out (a few at a time, through an
atomic counter) to the calling thread plus ``nthreads - 1`` helpers from a pool of pure-C
threads (:mod:`_fastpath.workpool`: no GIL, no Python objects, no per-call allocation
besides the block table); the call returns as soon as every claimed block is done, so a
helper that the OS wakes late costs nothing (it finds the task closed). Large bslz4 outputs
are written with non-temporal stores (no read-for-ownership of output lines that would not
stay cached anyway); the unshuffle uses GFNI when the CPU has it (checked at run time),
else SSE2.
Input from the wire is bounds-checked: corrupt or truncated data raises
``CorruptFrameError`` with the absolute byte offset in ``src`` and never reads or writes out
of bounds. Thread-safe as long as concurrent calls use distinct outputs (concurrent calls
that find the pool busy decode on their own thread).
"""

from libc.stdint cimport uint8_t, uint32_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _fastpath.bitshuf cimport dr_gfni_allowed, dr_sfence, dr_use_gfni, shuffle_block, unshuffle_block
from _fastpath.lz4dec cimport lz4_decode, lz4_error_text
from _fastpath.workpool cimport dr_pool_begin, dr_pool_end, dr_pool_set_slice, dr_pool_set_spin

from dranspose.errors import CorruptFrameError

cdef extern from *:
    """
    static inline Py_ssize_t dr_claim(Py_ssize_t* p, Py_ssize_t n) {
        return __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
    }
    """
    Py_ssize_t dr_claim(Py_ssize_t* p, Py_ssize_t n) nogil

DEF MODE_BSLZ4 = 0
DEF MODE_HDF5LZ4 = 1
DEF ERR_NOMEM = -100
DEF MAX_THREADS = 16
DEF STACK_SCRATCH = 32768
DEF CHUNK_MAX = 4

# outputs of at least this many bytes are written with non-temporal stores: a frame this
# large (an EIGER 4M frame is 17.9 MB) does not stay in the caches next to the input and the
# other process' data, so caching the written lines only costs a read per line; smaller
# frames (EIGER 1M: 4.4 MB) are written normally and stay cached for the analysis code
cdef Py_ssize_t _nt_min_bytes = 8 * 1024 * 1024


def _set_nt_min_bytes(Py_ssize_t nbytes):
    """Tuning hook for benchmarks: the output size from which stores are non-temporal
    (-1 = never). Returns the previous value."""
    global _nt_min_bytes
    old = _nt_min_bytes
    _nt_min_bytes = nbytes
    return old


def _set_gfni(bint allowed):
    """Test hook: allow (default) or forbid the GFNI unshuffle kernel; returns whether the
    GFNI kernel is now in use (False on CPUs without GFNI)."""
    global dr_gfni_allowed
    dr_gfni_allowed = allowed
    return bool(dr_use_gfni())


def _set_pool_slice(unsigned long long ns):
    """Tuning hook: the scheduler slice (ns) helpers ask for when they start (0: kernel
    default); affects helpers created later. Returns the previous value."""
    return dr_pool_set_slice(ns)


def _set_pool_spin(unsigned long n):
    """Tuning hook for benchmarks: pause iterations an idle helper polls for the next task
    before it sleeps. Returns the previous value."""
    return dr_pool_set_spin(n)


cdef inline uint32_t be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef struct BlockJob:
    int mode
    int nt                # bslz4: non-temporal stores to dst
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
    Py_ssize_t chunk      # blocks claimed at once
    char pad[64]          # keeps the claim counter off the cache line of the fields above
    Py_ssize_t next       # atomic: next block to claim


cdef void _run(void* arg) noexcept nogil:
    """Claim and decode chunks of blocks until none is left (any thread, any number of
    times). The job's fields are copied to locals: the output writes may alias them for
    the compiler, and the claim counter lives on its own cache line."""
    cdef BlockJob* job = <BlockJob*>arg
    cdef Py_ssize_t i, end, nelem, nb, errpos, rc
    cdef int mode = job.mode, nt = job.nt
    cdef const uint8_t* src = job.src
    cdef uint8_t* dst = job.dst
    cdef Py_ssize_t* offs = job.offs
    cdef Py_ssize_t* lens = job.lens
    cdef Py_ssize_t* errs = job.errs
    cdef Py_ssize_t nblocks = job.nblocks, full = job.full, last = job.last
    cdef Py_ssize_t block_elems = job.block_elems, elem_size = job.elem_size
    cdef Py_ssize_t block_bytes = job.block_bytes, chunk = job.chunk
    cdef uint8_t stackbuf[STACK_SCRATCH]
    cdef uint8_t* tmp = NULL
    cdef uint8_t* heap = NULL
    if mode == MODE_BSLZ4:
        if 2 * block_bytes <= STACK_SCRATCH:
            tmp = stackbuf
        else:
            heap = <uint8_t*>malloc(2 * block_bytes)
            tmp = heap
    while True:
        i = dr_claim(&job.next, chunk)
        if i >= nblocks:
            break
        end = min(i + chunk, nblocks)
        while i < end:
            errpos = 0
            if mode == MODE_BSLZ4:
                nelem = block_elems if i < full else last
                nb = nelem * elem_size
                if tmp == NULL:
                    rc = ERR_NOMEM
                else:
                    rc = lz4_decode(src + offs[i], lens[i], tmp, nb, &errpos)
                    if rc == 0:
                        unshuffle_block(tmp, dst + i * block_bytes, nelem, elem_size, tmp + nb, nt)
            else:
                nb = block_bytes if i < nblocks - 1 else last
                if lens[i] == nb:
                    memcpy(dst + i * block_bytes, src + offs[i], nb)
                    rc = 0
                else:
                    rc = lz4_decode(src + offs[i], lens[i], dst + i * block_bytes, nb, &errpos)
            if rc != 0:
                errs[i] = rc
                lens[i] = offs[i] + errpos
            i += 1
    if nt:
        dr_sfence()
    free(heap)


cdef BlockJob* _new_job(Py_ssize_t nblocks) except NULL:
    """A zeroed job with its block tables (one allocation; free with ``free``)."""
    cdef Py_ssize_t head = (sizeof(BlockJob) + 63) // 64 * 64
    cdef uint8_t* mem = <uint8_t*>malloc(head + (3 * nblocks + 1) * sizeof(Py_ssize_t))
    if mem == NULL:
        raise MemoryError()
    cdef BlockJob* job = <BlockJob*>mem
    job.mode = MODE_BSLZ4
    job.nt = 0
    job.offs = <Py_ssize_t*>(mem + head)
    job.lens = job.offs + nblocks
    job.errs = job.offs + 2 * nblocks
    job.nblocks = nblocks
    job.chunk = 1
    job.next = 0
    return job


cdef int _execute(BlockJob* job, int nthreads, str what) except -1:
    """Run the job on this thread plus helpers, free it, raise the first block error."""
    cdef Py_ssize_t i
    cdef int nh = <int>min(nthreads, job.nblocks, MAX_THREADS) - 1
    cdef int got = 0
    cdef Py_ssize_t err = 0, where = 0
    # a few blocks per claim: fewer atomic round trips between cores, and a tail of at
    # most (chunk - 1) blocks of imbalance
    job.chunk = max(1, min(CHUNK_MAX, job.nblocks // (64 * (nh + 1)))) if nh > 0 else job.nblocks
    with nogil:
        if nh > 0:
            got = dr_pool_begin(_run, job, nh)
        _run(job)
        if got > 0:
            dr_pool_end()
        for i in range(job.nblocks):
            if job.errs[i] != 0:
                err = job.errs[i]
                where = job.lens[i]
                break
    free(job)
    if err == ERR_NOMEM:
        raise MemoryError()
    if err != 0:
        raise CorruptFrameError(f"{what} block {i}: " + lz4_error_text(<int>err).decode(), where)
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
                                scratch, 0)
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
    if nblocks == 0:
        if srclen - start != rest:
            raise CorruptFrameError(
                f"bslz4 stream has {srclen - start} bytes after the last block, expected {rest}",
                start)
        if rest:
            memcpy(dp + total - rest, sp + srclen - rest, rest)
        return
    # caps before any allocation: every block costs at least its 4-byte length in ``src``,
    # and no block is larger than the output (the scratch of a decoding thread is two blocks)
    if nblocks > (srclen - start) // 4:
        raise CorruptFrameError(
            f"bslz4 stream of {srclen - start} bytes cannot hold {nblocks} blocks", start)
    if full == 0:
        block_bytes = last * elem_size
    cdef BlockJob* job = _new_job(nblocks)
    cdef Py_ssize_t pos = start, i, c, bad = -1
    # serial scan of the block table: every length checked against the input
    with nogil:
        for i in range(nblocks):
            if srclen - pos < 4:
                bad = 0
                break
            c = be32(sp + pos)
            pos += 4
            if c > srclen - pos:
                bad = 1
                break
            job.offs[i] = pos
            job.lens[i] = c
            job.errs[i] = 0
            pos += c
    if bad >= 0 or srclen - pos != rest:
        free(job)
        if bad == 0:
            raise CorruptFrameError("bslz4 stream truncated before a block length", pos)
        if bad == 1:
            raise CorruptFrameError(f"bslz4 block of {c} bytes runs past the end", pos)
        raise CorruptFrameError(
            f"bslz4 stream has {srclen - pos} bytes after the last block, expected {rest}", pos)
    job.mode = MODE_BSLZ4
    job.nt = (_nt_min_bytes >= 0 and total >= _nt_min_bytes and block_bytes % 16 == 0
              and (<uintptr_t>dp) % 16 == 0)
    job.src = sp
    job.dst = dp
    job.full = full
    job.last = last
    job.block_elems = block_elems
    job.elem_size = elem_size
    job.block_bytes = block_bytes
    _execute(job, nthreads, "bslz4")
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
    if nblocks > (srclen - start) // 4:  # each block costs at least its 4-byte length
        raise CorruptFrameError(
            f"HDF5-LZ4 stream of {srclen - start} bytes cannot hold {nblocks} blocks", start)
    cdef BlockJob* job = _new_job(nblocks)
    cdef Py_ssize_t pos = start, i, c
    for i in range(nblocks):
        if srclen - pos < 4:
            free(job)
            raise CorruptFrameError("HDF5-LZ4 stream truncated before a block length", pos)
        c = be32(sp + pos)
        pos += 4
        if c > srclen - pos:
            free(job)
            raise CorruptFrameError(f"HDF5-LZ4 block of {c} bytes runs past the end", pos)
        job.offs[i] = pos
        job.lens[i] = c
        job.errs[i] = 0
        pos += c
    if pos != srclen:
        free(job)
        raise CorruptFrameError(f"{srclen - pos} trailing bytes after the HDF5-LZ4 stream", pos)
    job.mode = MODE_HDF5LZ4
    job.src = sp
    job.dst = dp
    job.block_bytes = block
    job.last = total - (nblocks - 1) * block if nblocks else 0
    if nblocks:
        _execute(job, nthreads, "HDF5-LZ4")
    else:
        free(job)
