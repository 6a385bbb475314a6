# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The memo-index check of a binary pickle in one C loop (GIL released for large pickles).

Contract (shared with ``dranspose._reference.picklewalk.pickle_memo_end``):
``pickle_memo_end(buf, kinds, stores)`` walks the opcodes of the pickle at the start of ``buf``
and returns the offset just after its ``STOP`` when every memo store names an index no larger
than the number of opcodes read so far; it returns -1 for anything else (an opcode this walk
does not take, an unknown opcode, a truncated or malformed argument, an index too large). The
caller then runs the full walk (:func:`dranspose.pickle_ops.check_memo`), which also reads
protocols 0 and 1 and raises the precise error. ``buf`` is only read, never copied.

``kinds`` (256 int16, by opcode byte): ``0..8`` a fixed argument of that many bytes, ``-1`` /
``-4`` / ``-8`` an unsigned length of 1/4/8 bytes then that many bytes, ``-3`` a signed 4-byte
length, ``-50`` STOP, ``-100`` not taken here. ``stores`` (256 uint8): 1 where the fixed
argument is a memo index (BINPUT, LONG_BINPUT). Both come from :mod:`dranspose.pickle_ops`.
"""

from libc.stdint cimport int16_t, uint8_t, uint64_t

DEF STOP = -50
DEF SIGNED4 = -3


# below this many bytes the walk keeps the GIL: it takes well under a microsecond, and giving
# the GIL away hands it to any thread waiting for it (the HTTP server, a control thread), so
# this thread waits up to a switch interval to take it back -- per small result
NOGIL_MIN_BYTES = 65536


cdef Py_ssize_t _walk(const uint8_t* buf, Py_ssize_t end, const int16_t* kinds, const uint8_t* stores) noexcept nogil:
    cdef Py_ssize_t pos = 0, nbytes
    cdef uint64_t count = 0, value
    cdef int16_t kind
    cdef int i
    while pos < end:
        kind = kinds[buf[pos]]
        if kind >= 0:
            if kind > end - pos - 1:
                return -1
            count += 1
            if stores[buf[pos]]:
                value = 0
                for i in range(kind):
                    value |= (<uint64_t>buf[pos + 1 + i]) << (8 * i)
                if value > count:
                    return -1
            pos += 1 + kind
        elif kind == STOP:
            return pos + 1
        elif kind == -1 or kind == SIGNED4 or kind == -4 or kind == -8:
            nbytes = 4 if kind == SIGNED4 else -kind
            if nbytes > end - pos - 1:
                return -1
            value = 0
            for i in range(nbytes):
                value |= (<uint64_t>buf[pos + 1 + i]) << (8 * i)
            if kind == SIGNED4 and (value >> 31) != 0:  # a negative length
                return -1
            if value > <uint64_t>(end - pos - 1 - nbytes):
                return -1
            count += 1
            pos += 1 + nbytes + <Py_ssize_t>value
        else:
            return -1
    return -1


def pickle_memo_end(const uint8_t[::1] buf, const int16_t[::1] kinds, const uint8_t[::1] stores):
    """Offset after ``STOP`` of a pickle whose memo indices are sound, else -1 (see above)."""
    if kinds.shape[0] != 256 or stores.shape[0] != 256:
        raise ValueError("kinds and stores need one entry per opcode byte (256)")
    cdef Py_ssize_t end = buf.shape[0], result
    if end == 0:
        return -1
    if end < NOGIL_MIN_BYTES:
        return _walk(&buf[0], end, &kinds[0], &stores[0])
    with nogil:
        result = _walk(&buf[0], end, &kinds[0], &stores[0])
    return result
