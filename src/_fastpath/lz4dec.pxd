# cython: language_level=3
"""Bounds-checked raw LZ4 block decoder (inline, GIL-free), shared by bslz4 and lz4block.

``lz4_decode(src, srclen, dst, dstlen, &errpos)`` decodes one raw LZ4 block that must
consume exactly ``srclen`` bytes and produce exactly ``dstlen`` bytes. It returns 0 on
success, or a negative ``LZ4_E_*`` code with ``errpos`` set to the offset in ``src``.
Every read stays inside ``src[0:srclen]`` and every write inside ``dst[0:dstlen]``.
"""

from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef enum:
    LZ4_OK = 0
    LZ4_E_TOKEN = -1        # truncated: expected a token
    LZ4_E_LITLEN = -2       # truncated literal length
    LZ4_E_LITERALS = -3     # literals run past the input
    LZ4_E_LIT_OVERFLOW = -4 # literals overflow the output
    LZ4_E_SHORT = -5        # block ended before the output was full
    LZ4_E_OFFSET_TRUNC = -6 # truncated match offset
    LZ4_E_OFFSET = -7       # match offset 0 or before the output start
    LZ4_E_MATCHLEN = -8     # truncated match length
    LZ4_E_MATCH_OVERFLOW = -9  # match overflows the output


cdef inline const char* lz4_error_text(int code) noexcept:
    if code == LZ4_E_TOKEN:
        return b"LZ4 block truncated (expected a token)"
    if code == LZ4_E_LITLEN:
        return b"LZ4 block truncated in a literal length"
    if code == LZ4_E_LITERALS:
        return b"LZ4 literals run past the end of the block"
    if code == LZ4_E_LIT_OVERFLOW:
        return b"LZ4 literals overflow the output"
    if code == LZ4_E_SHORT:
        return b"LZ4 block decoded to fewer bytes than expected"
    if code == LZ4_E_OFFSET_TRUNC:
        return b"LZ4 block truncated in a match offset"
    if code == LZ4_E_OFFSET:
        return b"LZ4 match offset points before the output"
    if code == LZ4_E_MATCHLEN:
        return b"LZ4 block truncated in a match length"
    if code == LZ4_E_MATCH_OVERFLOW:
        return b"LZ4 match overflows the output"
    return b"LZ4 error"


cdef inline int lz4_decode(const uint8_t* src, Py_ssize_t srclen, uint8_t* dst,
                           Py_ssize_t dstlen, Py_ssize_t* errpos) noexcept nogil:
    cdef Py_ssize_t ip = 0, op = 0, lit, mlen, offset, d, k
    cdef unsigned int token, b
    cdef uint8_t* ref
    if srclen == 0 and dstlen == 0:
        return LZ4_OK
    while True:
        if ip >= srclen:
            errpos[0] = ip
            return LZ4_E_TOKEN
        token = src[ip]
        ip += 1
        lit = token >> 4
        if lit == 15:
            while True:
                if ip >= srclen:
                    errpos[0] = ip
                    return LZ4_E_LITLEN
                b = src[ip]
                ip += 1
                lit += b
                if b != 255:
                    break
        if lit > srclen - ip:
            errpos[0] = ip
            return LZ4_E_LITERALS
        if lit > dstlen - op:
            errpos[0] = ip
            return LZ4_E_LIT_OVERFLOW
        if lit <= 16 and srclen - ip >= 16 and dstlen - op >= 16:
            # fixed-size copy (inlined); the bytes past `lit` stay inside this block's
            # output and are overwritten by the following sequences
            memcpy(dst + op, src + ip, 16)
        else:
            memcpy(dst + op, src + ip, lit)
        ip += lit
        op += lit
        if ip == srclen:
            if op != dstlen:
                errpos[0] = ip
                return LZ4_E_SHORT
            return LZ4_OK
        if srclen - ip < 2:
            errpos[0] = ip
            return LZ4_E_OFFSET_TRUNC
        offset = src[ip] | (<Py_ssize_t>src[ip + 1] << 8)
        if offset == 0 or offset > op:
            errpos[0] = ip
            return LZ4_E_OFFSET
        ip += 2
        mlen = (token & 15) + 4
        if (token & 15) == 15:
            while True:
                if ip >= srclen:
                    errpos[0] = ip
                    return LZ4_E_MATCHLEN
                b = src[ip]
                ip += 1
                mlen += b
                if b != 255:
                    break
        if mlen > dstlen - op:
            errpos[0] = ip
            return LZ4_E_MATCH_OVERFLOW
        ref = dst + op - offset
        if offset >= 16 and mlen <= 32 and dstlen - op >= 32:
            # two fixed 16-byte copies; the second may re-read bytes the first just wrote,
            # which is exactly LZ4's overlapping-match semantics
            memcpy(dst + op, ref, 16)
            memcpy(dst + op + 16, ref + 16, 16)
        elif offset >= mlen:
            memcpy(dst + op, ref, mlen)
        elif offset == 1:
            memset(dst + op, ref[0], mlen)
        else:
            # overlapping copy: [ref, op + k) repeats with period `offset`, so a chunk of up
            # to offset + k bytes can be copied from ref to op + k without overlap while k
            # stays a multiple of the period; chunks double, O(log) memcpy calls
            k = 0
            while k < mlen:
                d = offset + k
                if d > mlen - k:
                    d = mlen - k
                memcpy(dst + op + k, ref, d)
                k += d
        op += mlen
