/* Bit-matrix transpose kernels of _fastpath.bitshuf (SSE2, GFNI at run time, scalar).
 * Included by the Cython modules that cimport _fastpath.bitshuf; all functions are
 * static inline (one copy per extension module), GIL-free and allocation-free. */
#ifndef DR_BITSHUF_H
#define DR_BITSHUF_H

#include <stddef.h>
#include <stdint.h>
#ifndef PY_SSIZE_T_MAX /* read by C tooling outside a Python build: Py_ssize_t is ptrdiff_t */
typedef ptrdiff_t Py_ssize_t;
#endif
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define DR_HAVE_SSE2 1
static inline __m128i dr_ld128(const void* p) { return _mm_loadu_si128((const __m128i*)p); }
static inline void dr_st128(void* p, __m128i v) { _mm_storeu_si128((__m128i*)p, v); }
/* store to the final output: non-temporal (16-byte aligned p) when nt, else plain */
static inline void dr_stout(void* p, __m128i v, int nt) {
    if (nt) _mm_stream_si128((__m128i*)p, v); else _mm_storeu_si128((__m128i*)p, v);
}
static inline void dr_sfence(void) { _mm_sfence(); }
#else
/* no SSE2: placeholders that are never called (DR_HAVE_SSE2 == 0 selects scalar code) */
#define DR_HAVE_SSE2 0
typedef struct { unsigned long long lo, hi; } __m128i;
static inline __m128i dr_zero128(void) { __m128i r = {0, 0}; return r; }
#define dr_ld128(p) dr_zero128()
#define dr_st128(p, v) ((void)0)
#define dr_stout(p, v, nt) ((void)0)
static inline void dr_sfence(void) {}
#define _mm_set1_epi8(c) dr_zero128()
#define _mm_and_si128(a, b) dr_zero128()
#define _mm_xor_si128(a, b) dr_zero128()
#define _mm_srli_epi16(a, n) dr_zero128()
#define _mm_slli_epi16(a, n) dr_zero128()
#define _mm_unpacklo_epi8(a, b) dr_zero128()
#define _mm_unpackhi_epi8(a, b) dr_zero128()
#define _mm_unpacklo_epi16(a, b) dr_zero128()
#define _mm_unpackhi_epi16(a, b) dr_zero128()
#define _mm_unpacklo_epi32(a, b) dr_zero128()
#define _mm_unpackhi_epi32(a, b) dr_zero128()
#define _mm_or_si128(a, b) dr_zero128()
#define _mm_cmpeq_epi8(a, b) dr_zero128()
#define _mm_movemask_epi8(a) 0
#define _mm_setzero_si128() dr_zero128()
#endif

#if DR_HAVE_SSE2 && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define DR_HAVE_GFNI_CODE 1
static int dr_gfni_state = -1;   /* -1 unknown, 0 no, 1 yes; benign race */
static int dr_gfni_allowed = 1;  /* tuning/test hook: 0 forces the SSE2 kernel */
static inline int dr_use_gfni(void) {
    if (dr_gfni_state < 0) {
        __builtin_cpu_init();
        dr_gfni_state = __builtin_cpu_supports("gfni") ? 1 : 0;
    }
    return dr_gfni_state && dr_gfni_allowed;
}

/* Unshuffle with GFNI: gather byte q of the 8 planes of one byte index (reversed
   plane order) into a qword with three unpack rounds, then one GF2P8AFFINEQB against
   the unit bytes (1 << e) transposes all 8x8 bit tiles at once, giving the bytes of
   16 x 8 elements in element order. n % 128 == 0, s in 1, 2, 4, 8, scratch >= 128 * s,
   nt: dst 16-byte aligned and written with non-temporal stores. */
__attribute__((target("gfni")))
static void dr_unshuffle_gfni(const uint8_t* src, uint8_t* dst, Py_ssize_t n,
                              Py_ssize_t s, uint8_t* scratch, int nt) {
    const __m128i unit = _mm_set1_epi64x((long long)0x8040201008040201ULL);
    const __m128i zero = _mm_setzero_si128();
    Py_ssize_t nb = n >> 3, k, j, i;
    int b;
    for (k = 0; k < nb; k += 16) {
        uint8_t* out = dst + 8 * k * s;
        unsigned int live = 0;
        for (j = 0; j < s; j++) {
            const uint8_t* sp = src + 8 * j * nb + k;
            __m128i acc = _mm_or_si128(
                _mm_or_si128(_mm_or_si128(dr_ld128(sp), dr_ld128(sp + nb)),
                             _mm_or_si128(dr_ld128(sp + 2 * nb), dr_ld128(sp + 3 * nb))),
                _mm_or_si128(_mm_or_si128(dr_ld128(sp + 4 * nb), dr_ld128(sp + 5 * nb)),
                             _mm_or_si128(dr_ld128(sp + 6 * nb), dr_ld128(sp + 7 * nb))));
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(acc, zero)) != 0xFFFF) live |= 1u << j;
        }
        if (live == 0) {
            for (i = 0; i < 128 * s; i += 16) dr_stout(out + i, zero, nt);
            continue;
        }
        int direct = (s == 1) || (live == 1 && (s == 2 || s == 4));
        for (j = 0; j < s; j++) {
            __m128i r[8];
            uint8_t* row = scratch + 128 * j;
            if (!((live >> j) & 1)) {
                if (!direct)
                    for (b = 0; b < 8; b++) dr_st128(row + 16 * b, zero);
                continue;
            }
            const uint8_t* sp = src + 8 * j * nb + k;
            __m128i p0 = dr_ld128(sp), p1 = dr_ld128(sp + nb);
            __m128i p2 = dr_ld128(sp + 2 * nb), p3 = dr_ld128(sp + 3 * nb);
            __m128i p4 = dr_ld128(sp + 4 * nb), p5 = dr_ld128(sp + 5 * nb);
            __m128i p6 = dr_ld128(sp + 6 * nb), p7 = dr_ld128(sp + 7 * nb);
            __m128i a0 = _mm_unpacklo_epi8(p7, p6), a1 = _mm_unpackhi_epi8(p7, p6);
            __m128i a2 = _mm_unpacklo_epi8(p5, p4), a3 = _mm_unpackhi_epi8(p5, p4);
            __m128i a4 = _mm_unpacklo_epi8(p3, p2), a5 = _mm_unpackhi_epi8(p3, p2);
            __m128i a6 = _mm_unpacklo_epi8(p1, p0), a7 = _mm_unpackhi_epi8(p1, p0);
            __m128i b0 = _mm_unpacklo_epi16(a0, a2), b1 = _mm_unpackhi_epi16(a0, a2);
            __m128i b2 = _mm_unpacklo_epi16(a1, a3), b3 = _mm_unpackhi_epi16(a1, a3);
            __m128i b4 = _mm_unpacklo_epi16(a4, a6), b5 = _mm_unpackhi_epi16(a4, a6);
            __m128i b6 = _mm_unpacklo_epi16(a5, a7), b7 = _mm_unpackhi_epi16(a5, a7);
            r[0] = _mm_unpacklo_epi32(b0, b4); r[1] = _mm_unpackhi_epi32(b0, b4);
            r[2] = _mm_unpacklo_epi32(b1, b5); r[3] = _mm_unpackhi_epi32(b1, b5);
            r[4] = _mm_unpacklo_epi32(b2, b6); r[5] = _mm_unpackhi_epi32(b2, b6);
            r[6] = _mm_unpacklo_epi32(b3, b7); r[7] = _mm_unpackhi_epi32(b3, b7);
            for (b = 0; b < 8; b++) r[b] = _mm_gf2p8affine_epi64_epi8(unit, r[b], 0);
            /* r[b]: byte j of elements 16b .. 16b+15 of this group */
            if (s == 1) {
                for (b = 0; b < 8; b++) dr_stout(out + 16 * b, r[b], nt);
            } else if (direct) {
                /* only byte 0 is nonzero: zero-extend straight to the output */
                for (b = 0; b < 8; b++) {
                    __m128i lo = _mm_unpacklo_epi8(r[b], zero), hi = _mm_unpackhi_epi8(r[b], zero);
                    if (s == 2) {
                        dr_stout(out + 32 * b, lo, nt);
                        dr_stout(out + 32 * b + 16, hi, nt);
                    } else {
                        dr_stout(out + 64 * b, _mm_unpacklo_epi16(lo, zero), nt);
                        dr_stout(out + 64 * b + 16, _mm_unpackhi_epi16(lo, zero), nt);
                        dr_stout(out + 64 * b + 32, _mm_unpacklo_epi16(hi, zero), nt);
                        dr_stout(out + 64 * b + 48, _mm_unpackhi_epi16(hi, zero), nt);
                    }
                }
            } else {
                for (b = 0; b < 8; b++) dr_st128(row + 16 * b, r[b]);
            }
        }
        if (direct) continue;
        if (s == 2) {
            for (i = 0; i < 128; i += 16) {
                __m128i x0 = dr_ld128(scratch + i), x1 = dr_ld128(scratch + 128 + i);
                dr_stout(out + 2 * i, _mm_unpacklo_epi8(x0, x1), nt);
                dr_stout(out + 2 * i + 16, _mm_unpackhi_epi8(x0, x1), nt);
            }
        } else if (s == 4) {
            for (i = 0; i < 128; i += 16) {
                __m128i x0 = dr_ld128(scratch + i), x1 = dr_ld128(scratch + 128 + i);
                __m128i x2 = dr_ld128(scratch + 256 + i), x3 = dr_ld128(scratch + 384 + i);
                __m128i v0 = _mm_unpacklo_epi8(x0, x1), v1 = _mm_unpackhi_epi8(x0, x1);
                __m128i v2 = _mm_unpacklo_epi8(x2, x3), v3 = _mm_unpackhi_epi8(x2, x3);
                dr_stout(out + 4 * i, _mm_unpacklo_epi16(v0, v2), nt);
                dr_stout(out + 4 * i + 16, _mm_unpackhi_epi16(v0, v2), nt);
                dr_stout(out + 4 * i + 32, _mm_unpacklo_epi16(v1, v3), nt);
                dr_stout(out + 4 * i + 48, _mm_unpackhi_epi16(v1, v3), nt);
            }
        } else { /* s == 8 */
            for (i = 0; i < 128; i += 16) {
                __m128i x[8], v[8], a[8];
                for (b = 0; b < 8; b++) x[b] = dr_ld128(scratch + 128 * b + i);
                for (b = 0; b < 4; b++) {
                    v[2 * b] = _mm_unpacklo_epi8(x[2 * b], x[2 * b + 1]);
                    v[2 * b + 1] = _mm_unpackhi_epi8(x[2 * b], x[2 * b + 1]);
                }
                a[0] = _mm_unpacklo_epi16(v[0], v[2]); a[1] = _mm_unpackhi_epi16(v[0], v[2]);
                a[2] = _mm_unpacklo_epi16(v[1], v[3]); a[3] = _mm_unpackhi_epi16(v[1], v[3]);
                a[4] = _mm_unpacklo_epi16(v[4], v[6]); a[5] = _mm_unpackhi_epi16(v[4], v[6]);
                a[6] = _mm_unpacklo_epi16(v[5], v[7]); a[7] = _mm_unpackhi_epi16(v[5], v[7]);
                for (b = 0; b < 4; b++) {
                    dr_stout(out + 8 * i + 32 * b, _mm_unpacklo_epi32(a[b], a[b + 4]), nt);
                    dr_stout(out + 8 * i + 32 * b + 16, _mm_unpackhi_epi32(a[b], a[b + 4]), nt);
                }
            }
        }
    }
}
#else
#define DR_HAVE_GFNI_CODE 0
static int dr_gfni_allowed = 0;
static inline int dr_use_gfni(void) { return 0; }
static inline void dr_unshuffle_gfni(const uint8_t* src, uint8_t* dst, Py_ssize_t n,
                                     Py_ssize_t s, uint8_t* scratch, int nt) {}
#endif

#endif /* DR_BITSHUF_H */
