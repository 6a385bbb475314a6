# cython: language_level=3
"""Bit-matrix transposes for bitshuffle (inline, GIL-free, no allocation).

A block of ``n`` elements of ``s`` bytes (``n % 8 == 0``) is an ``n x 8s`` bit matrix
(row = element, column ``8j+b`` = bit ``b`` of byte ``j``, LSB first). Bitshuffle is its
transpose, ``8s x n`` ("bit planes"); unshuffle the inverse transpose. Both are done in
8x8-bit tiles: gather 8 bytes down a column of tiles, transpose them in one 64-bit word,
scatter 8 bytes. The unshuffle (the decoder's hot loop) has SSE2 (x86-64 baseline) and GFNI
kernels, the latter chosen at run time (``__builtin_cpu_supports``), and can write its
output with non-temporal stores (``nt``) for outputs much larger than the caches.
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "bitshuf.h":
    const int DR_HAVE_SSE2
    int dr_gfni_allowed
    int dr_use_gfni() nogil
    void dr_unshuffle_gfni(const uint8_t* src, uint8_t* dst, Py_ssize_t n, Py_ssize_t s,
                           uint8_t* scratch, int nt) nogil
    ctypedef struct __m128i:
        pass
    __m128i dr_ld128(const void* p) nogil
    void dr_st128(void* p, __m128i v) nogil
    void dr_stout(void* p, __m128i v, int nt) nogil
    void dr_sfence() nogil
    __m128i _mm_set1_epi8(char c) nogil
    __m128i _mm_and_si128(__m128i a, __m128i b) nogil
    __m128i _mm_xor_si128(__m128i a, __m128i b) nogil
    __m128i _mm_srli_epi16(__m128i a, int n) nogil
    __m128i _mm_slli_epi16(__m128i a, int n) nogil
    __m128i _mm_unpacklo_epi8(__m128i a, __m128i b) nogil
    __m128i _mm_unpackhi_epi8(__m128i a, __m128i b) nogil
    __m128i _mm_unpacklo_epi16(__m128i a, __m128i b) nogil
    __m128i _mm_unpackhi_epi16(__m128i a, __m128i b) nogil
    __m128i _mm_unpacklo_epi32(__m128i a, __m128i b) nogil
    __m128i _mm_unpackhi_epi32(__m128i a, __m128i b) nogil
    __m128i _mm_or_si128(__m128i a, __m128i b) nogil
    __m128i _mm_cmpeq_epi8(__m128i a, __m128i b) nogil
    int _mm_movemask_epi8(__m128i a) nogil
    __m128i _mm_setzero_si128() nogil


cdef inline uint64_t transpose8(uint64_t x) noexcept nogil:
    """Transpose an 8x8 bit matrix held as 8 bytes (byte = row, bit = column)."""
    cdef uint64_t t
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL
    x = x ^ t ^ (t << 7)
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL
    x = x ^ t ^ (t << 14)
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL
    x = x ^ t ^ (t << 28)
    return x


cdef inline void bit_transpose(const uint8_t* src, uint8_t* dst, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil:
    """dst (cols x rows bits) = transpose of src (rows x cols bits); rows, cols % 8 == 0."""
    cdef Py_ssize_t rb, cb, r, c
    cdef Py_ssize_t src_stride = cols >> 3, dst_stride = rows >> 3
    cdef uint64_t x
    cdef const uint8_t* sp
    cdef uint8_t* dp
    for rb in range(rows >> 3):
        for cb in range(src_stride):
            sp = src + (rb << 3) * src_stride + cb
            x = (<uint64_t>sp[0] | (<uint64_t>sp[src_stride] << 8)
                 | (<uint64_t>sp[2 * src_stride] << 16) | (<uint64_t>sp[3 * src_stride] << 24)
                 | (<uint64_t>sp[4 * src_stride] << 32) | (<uint64_t>sp[5 * src_stride] << 40)
                 | (<uint64_t>sp[6 * src_stride] << 48) | (<uint64_t>sp[7 * src_stride] << 56))
            x = transpose8(x)
            dp = dst + (cb << 3) * dst_stride + rb
            dp[0] = <uint8_t>x
            dp[dst_stride] = <uint8_t>(x >> 8)
            dp[2 * dst_stride] = <uint8_t>(x >> 16)
            dp[3 * dst_stride] = <uint8_t>(x >> 24)
            dp[4 * dst_stride] = <uint8_t>(x >> 32)
            dp[5 * dst_stride] = <uint8_t>(x >> 40)
            dp[6 * dst_stride] = <uint8_t>(x >> 48)
            dp[7 * dst_stride] = <uint8_t>(x >> 56)


cdef inline void shuffle_block(const uint8_t* src, uint8_t* dst, Py_ssize_t n,
                               Py_ssize_t s) noexcept nogil:
    bit_transpose(src, dst, n, 8 * s)


cdef inline void unshuffle_block(const uint8_t* src, uint8_t* dst, Py_ssize_t n,
                                 Py_ssize_t s, uint8_t* scratch, int nt) noexcept nogil:
    """Bit planes -> elements. ``scratch`` holds ``n * s`` bytes (at least 1024).

    ``nt``: write ``dst`` with non-temporal stores (``dst`` must be 16-byte aligned; the
    caller issues ``dr_sfence()`` before publishing the result). Used for outputs much larger
    than the caches, where it saves the read-for-ownership of every output line.
    """
    if DR_HAVE_SSE2 and n % 128 == 0 and (s == 1 or s == 2 or s == 4 or s == 8):
        if dr_use_gfni():
            dr_unshuffle_gfni(src, dst, n, s, scratch, nt)
        else:
            unshuffle_sse2(src, dst, n, s, scratch, nt)
    else:
        bit_transpose(src, dst, 8 * s, n)


cdef inline void _swap_bits(__m128i* v, int a, int b, int sh, __m128i m) noexcept nogil:
    """Exchange the high ``sh`` bits of each byte of v[a] with the low ``sh`` bits of v[b]."""
    cdef __m128i t = _mm_and_si128(_mm_xor_si128(_mm_srli_epi16(v[a], sh), v[b]), m)
    v[b] = _mm_xor_si128(v[b], t)
    v[a] = _mm_xor_si128(v[a], _mm_slli_epi16(t, sh))


cdef inline void unshuffle_sse2(const uint8_t* src, uint8_t* dst, Py_ssize_t n, Py_ssize_t s,
                                uint8_t* scratch, int nt) noexcept nogil:
    """SSE2 unshuffle, ``n % 128 == 0``, ``s`` in 1, 2, 4, 8; ``scratch`` >= ``128 * s`` bytes.

    Works on groups of 128 elements (16 bytes of every bit plane). A group whose planes are
    all zero (common in sparse detector frames) is a memset. Otherwise, per byte index j:
    transpose the 8x8 bit tiles of the 16 byte lanes of planes 8j..8j+7 at once (three swap
    rounds), then interleave the 8 vectors bytewise, giving byte j of the 128 elements; last,
    interleave the ``s`` byte rows into whole elements.
    """
    cdef __m128i v[8]
    cdef __m128i a[8]
    cdef __m128i c[8]
    cdef __m128i acc
    cdef __m128i m4 = _mm_set1_epi8(0x0F)
    cdef __m128i m2 = _mm_set1_epi8(0x33)
    cdef __m128i m1 = _mm_set1_epi8(0x55)
    cdef __m128i zero = _mm_setzero_si128()
    cdef Py_ssize_t nb = n >> 3, j, k, b, i
    cdef unsigned int live
    cdef int ntrow = nt if s == 1 else 0
    cdef uint8_t* row
    cdef uint8_t* out
    cdef const uint8_t* sp
    for k in range(0, nb, 16):
        out = dst + 8 * k * s
        live = 0
        for j in range(s):
            sp = src + 8 * j * nb + k
            acc = _mm_or_si128(
                _mm_or_si128(_mm_or_si128(dr_ld128(sp), dr_ld128(sp + nb)),
                             _mm_or_si128(dr_ld128(sp + 2 * nb), dr_ld128(sp + 3 * nb))),
                _mm_or_si128(_mm_or_si128(dr_ld128(sp + 4 * nb), dr_ld128(sp + 5 * nb)),
                             _mm_or_si128(dr_ld128(sp + 6 * nb), dr_ld128(sp + 7 * nb))))
            if _mm_movemask_epi8(_mm_cmpeq_epi8(acc, zero)) != 0xFFFF:
                live |= 1 << j
        if live == 0:
            if nt:
                for i in range(0, 128 * s, 16):
                    dr_stout(out + i, zero, 1)
            else:
                memset(out, 0, 128 * s)
            continue
        for j in range(s):
            row = out if s == 1 else scratch + 128 * j
            if not (live >> j) & 1:
                for b in range(8):
                    dr_stout(row + 16 * b, zero, ntrow)
                continue
            sp = src + 8 * j * nb + k
            for b in range(8):
                v[b] = dr_ld128(sp + b * nb)
            _swap_bits(v, 0, 4, 4, m4)
            _swap_bits(v, 1, 5, 4, m4)
            _swap_bits(v, 2, 6, 4, m4)
            _swap_bits(v, 3, 7, 4, m4)
            _swap_bits(v, 0, 2, 2, m2)
            _swap_bits(v, 1, 3, 2, m2)
            _swap_bits(v, 4, 6, 2, m2)
            _swap_bits(v, 5, 7, 2, m2)
            _swap_bits(v, 0, 1, 1, m1)
            _swap_bits(v, 2, 3, 1, m1)
            _swap_bits(v, 4, 5, 1, m1)
            _swap_bits(v, 6, 7, 1, m1)
            # v[e] byte q = byte j of element 8*(k+q)+e: interleave to element order
            a[0] = _mm_unpacklo_epi8(v[0], v[1])
            a[1] = _mm_unpackhi_epi8(v[0], v[1])
            a[2] = _mm_unpacklo_epi8(v[2], v[3])
            a[3] = _mm_unpackhi_epi8(v[2], v[3])
            a[4] = _mm_unpacklo_epi8(v[4], v[5])
            a[5] = _mm_unpackhi_epi8(v[4], v[5])
            a[6] = _mm_unpacklo_epi8(v[6], v[7])
            a[7] = _mm_unpackhi_epi8(v[6], v[7])
            v[0] = _mm_unpacklo_epi16(a[0], a[2])
            v[1] = _mm_unpackhi_epi16(a[0], a[2])
            v[2] = _mm_unpacklo_epi16(a[1], a[3])
            v[3] = _mm_unpackhi_epi16(a[1], a[3])
            v[4] = _mm_unpacklo_epi16(a[4], a[6])
            v[5] = _mm_unpackhi_epi16(a[4], a[6])
            v[6] = _mm_unpacklo_epi16(a[5], a[7])
            v[7] = _mm_unpackhi_epi16(a[5], a[7])
            c[0] = _mm_unpacklo_epi32(v[0], v[4])
            c[1] = _mm_unpackhi_epi32(v[0], v[4])
            c[2] = _mm_unpacklo_epi32(v[1], v[5])
            c[3] = _mm_unpackhi_epi32(v[1], v[5])
            c[4] = _mm_unpacklo_epi32(v[2], v[6])
            c[5] = _mm_unpackhi_epi32(v[2], v[6])
            c[6] = _mm_unpacklo_epi32(v[3], v[7])
            c[7] = _mm_unpackhi_epi32(v[3], v[7])
            if live == 1 and (s == 2 or s == 4):
                # only the low bytes are nonzero (small counts): zero-extend straight out
                for b in range(8):
                    a[0] = _mm_unpacklo_epi8(c[b], zero)
                    a[1] = _mm_unpackhi_epi8(c[b], zero)
                    if s == 2:
                        dr_stout(out + 32 * b, a[0], nt)
                        dr_stout(out + 32 * b + 16, a[1], nt)
                    else:
                        dr_stout(out + 64 * b, _mm_unpacklo_epi16(a[0], zero), nt)
                        dr_stout(out + 64 * b + 16, _mm_unpackhi_epi16(a[0], zero), nt)
                        dr_stout(out + 64 * b + 32, _mm_unpacklo_epi16(a[1], zero), nt)
                        dr_stout(out + 64 * b + 48, _mm_unpackhi_epi16(a[1], zero), nt)
                break
            for b in range(8):
                dr_stout(row + 16 * b, c[b], ntrow)
        if live == 1 and (s == 2 or s == 4):
            continue
        if s == 2:
            for i in range(0, 128, 16):
                a[0] = dr_ld128(scratch + i)
                a[1] = dr_ld128(scratch + 128 + i)
                dr_stout(out + 2 * i, _mm_unpacklo_epi8(a[0], a[1]), nt)
                dr_stout(out + 2 * i + 16, _mm_unpackhi_epi8(a[0], a[1]), nt)
        elif s == 4:
            for i in range(0, 128, 16):
                a[0] = dr_ld128(scratch + i)
                a[1] = dr_ld128(scratch + 128 + i)
                a[2] = dr_ld128(scratch + 256 + i)
                a[3] = dr_ld128(scratch + 384 + i)
                v[0] = _mm_unpacklo_epi8(a[0], a[1])
                v[1] = _mm_unpackhi_epi8(a[0], a[1])
                v[2] = _mm_unpacklo_epi8(a[2], a[3])
                v[3] = _mm_unpackhi_epi8(a[2], a[3])
                dr_stout(out + 4 * i, _mm_unpacklo_epi16(v[0], v[2]), nt)
                dr_stout(out + 4 * i + 16, _mm_unpackhi_epi16(v[0], v[2]), nt)
                dr_stout(out + 4 * i + 32, _mm_unpacklo_epi16(v[1], v[3]), nt)
                dr_stout(out + 4 * i + 48, _mm_unpackhi_epi16(v[1], v[3]), nt)
        elif s == 8:
            for i in range(0, 128, 16):
                for b in range(8):
                    a[b] = dr_ld128(scratch + 128 * b + i)
                v[0] = _mm_unpacklo_epi8(a[0], a[1])
                v[1] = _mm_unpackhi_epi8(a[0], a[1])
                v[2] = _mm_unpacklo_epi8(a[2], a[3])
                v[3] = _mm_unpackhi_epi8(a[2], a[3])
                v[4] = _mm_unpacklo_epi8(a[4], a[5])
                v[5] = _mm_unpackhi_epi8(a[4], a[5])
                v[6] = _mm_unpacklo_epi8(a[6], a[7])
                v[7] = _mm_unpackhi_epi8(a[6], a[7])
                # v[0]: elements i..i+7, bytes (0,1); v[2]: bytes (2,3); v[4]: (4,5); v[6]: (6,7)
                a[0] = _mm_unpacklo_epi16(v[0], v[2])
                a[1] = _mm_unpackhi_epi16(v[0], v[2])
                a[2] = _mm_unpacklo_epi16(v[1], v[3])
                a[3] = _mm_unpackhi_epi16(v[1], v[3])
                a[4] = _mm_unpacklo_epi16(v[4], v[6])
                a[5] = _mm_unpackhi_epi16(v[4], v[6])
                a[6] = _mm_unpacklo_epi16(v[5], v[7])
                a[7] = _mm_unpackhi_epi16(v[5], v[7])
                # a[0]: elements i..i+3 bytes 0-3; a[4]: elements i..i+3 bytes 4-7
                dr_stout(out + 8 * i, _mm_unpacklo_epi32(a[0], a[4]), nt)
                dr_stout(out + 8 * i + 16, _mm_unpackhi_epi32(a[0], a[4]), nt)
                dr_stout(out + 8 * i + 32, _mm_unpacklo_epi32(a[1], a[5]), nt)
                dr_stout(out + 8 * i + 48, _mm_unpackhi_epi32(a[1], a[5]), nt)
                dr_stout(out + 8 * i + 64, _mm_unpacklo_epi32(a[2], a[6]), nt)
                dr_stout(out + 8 * i + 80, _mm_unpackhi_epi32(a[2], a[6]), nt)
                dr_stout(out + 8 * i + 96, _mm_unpacklo_epi32(a[3], a[7]), nt)
                dr_stout(out + 8 * i + 112, _mm_unpackhi_epi32(a[3], a[7]), nt)
