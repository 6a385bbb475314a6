# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""CBOR walker (RFC 8949) with RFC 8746 typed arrays, tag 40/1040 and DECTRIS tag 56500.

``cbor_decode(buf)`` decodes the single item that fills ``buf``. Byte strings are returned as
read-only memoryview slices of ``buf`` and typed arrays as numpy views into it (zero-copy,
possibly unaligned); tag 56500 as ``CompressedArray`` (not decompressed here); other tags as
``CborTag``. Every length is checked against the buffer: malformed or truncated input raises
``CorruptFrameError`` with the byte offset. Same output as ``dranspose._reference.cbor``.
"""

import math
import struct

import numpy as np

from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy

from dranspose._reference.cbor_types import CborSimple, CborTag, CompressedArray, typed_array_dtype
from dranspose.errors import CorruptFrameError

DEF MAX_DEPTH = 64

cdef object _DTYPES = {t: typed_array_dtype(t) for t in range(64, 88)}
cdef object _frombuffer = np.frombuffer


cdef double _half(unsigned int bits):
    cdef int exp = (bits >> 10) & 0x1F
    cdef int mant = bits & 0x3FF
    cdef double val
    if exp == 0:
        val = math.ldexp(mant, -24)
    elif exp == 31:
        val = math.nan if mant else math.inf
    else:
        val = math.ldexp(mant + 1024, exp - 25)
    return -val if bits & 0x8000 else val


cdef class _Walker:
    cdef const uint8_t* p
    cdef Py_ssize_t n
    cdef Py_ssize_t pos
    cdef object mv

    cdef int need(self, Py_ssize_t k, str what) except -1:
        if k < 0 or k > self.n - self.pos:
            raise CorruptFrameError(f"CBOR {what} runs past the end of the message", self.pos)
        return 0

    cdef uint64_t arg(self, int info, Py_ssize_t at) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t val = 0
        cdef int k, i
        if info < 24:
            return info
        if info > 27:
            raise CorruptFrameError(f"CBOR reserved additional information {info}", at)
        k = 1 << (info - 24)
        self.need(k, "argument")
        for i in range(k):
            val = (val << 8) | self.p[self.pos + i]
        self.pos += k
        return val

    cdef Py_ssize_t length(self, uint64_t val, Py_ssize_t per_item, str what) except -1:
        """A string/array/map length that must fit in the rest of the buffer."""
        if val > <uint64_t>(self.n - self.pos) // per_item:
            raise CorruptFrameError(f"CBOR {what} runs past the end of the message", self.pos)
        return <Py_ssize_t>val

    cdef object item(self, int depth):
        cdef Py_ssize_t at, k, i
        cdef uint8_t ib
        cdef int major, info
        cdef uint64_t val
        cdef list lst
        cdef dict dct
        if depth > MAX_DEPTH:
            raise CorruptFrameError("CBOR nesting too deep", self.pos)
        self.need(1, "item")
        at = self.pos
        ib = self.p[at]
        self.pos += 1
        major = ib >> 5
        info = ib & 31
        if major == 7:
            return self.simple(info, at)
        if info == 31:
            return self.indefinite(major, depth, at)
        val = self.arg(info, at)
        if major == 0:
            return val
        if major == 1:
            return -1 - <object>val
        if major == 2 or major == 3:
            k = self.length(val, 1, "string")
            i = self.pos
            self.pos += k
            if major == 2:
                return self.mv[i:i + k]
            try:
                return (<const char*>self.p)[i:i + k].decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptFrameError("CBOR text is not UTF-8", at) from None
        if major == 4:
            k = self.length(val, 1, "array")
            lst = [None] * k
            for i in range(k):
                lst[i] = self.item(depth + 1)
            return lst
        if major == 5:
            k = self.length(val, 2, "map")
            dct = {}
            for i in range(k):
                self.entry(dct, depth)
            return dct
        return self.tagged(val, self.item(depth + 1), at)

    cdef int entry(self, dict out, int depth) except -1:
        cdef Py_ssize_t kat = self.pos
        key = self.item(depth + 1)
        if type(key) is memoryview:
            key = bytes(key)
        try:
            hash(key)
        except TypeError:
            raise CorruptFrameError("CBOR map key is not hashable", kat) from None
        out[key] = self.item(depth + 1)
        return 0

    cdef object simple(self, int info, Py_ssize_t at):
        cdef int k
        cdef uint64_t bits = 0
        cdef double d
        cdef float f
        cdef unsigned int v
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22 or info == 23:
            return None
        if info < 24:
            return CborSimple(info)
        if info == 24:
            self.need(1, "simple value")
            v = self.p[self.pos]
            self.pos += 1
            if v < 32:
                raise CorruptFrameError("CBOR two-byte simple value below 32", at)
            return CborSimple(v)
        if info == 25 or info == 26 or info == 27:
            k = 1 << (info - 24)
            self.need(k, "float")
            for i in range(k):
                bits = (bits << 8) | self.p[self.pos + i]
            self.pos += k
            if k == 2:
                return _half(<unsigned int>bits)
            if k == 4:
                v = <unsigned int>bits
                memcpy(&f, &v, 4)
                return <double>f
            memcpy(&d, &bits, 8)
            return d
        if info == 31:
            raise CorruptFrameError("CBOR unexpected break", at)
        raise CorruptFrameError(f"CBOR reserved simple value {info}", at)

    cdef object indefinite(self, int major, int depth, Py_ssize_t at):
        cdef list parts, items
        cdef dict out
        cdef Py_ssize_t cat, k
        cdef uint8_t ib
        if major == 2 or major == 3:
            parts = []
            while True:
                self.need(1, "indefinite string")
                if self.p[self.pos] == 0xFF:
                    self.pos += 1
                    break
                cat = self.pos
                ib = self.p[cat]
                self.pos += 1
                if (ib >> 5) != major or (ib & 31) == 31:
                    raise CorruptFrameError("CBOR bad chunk in an indefinite string", cat)
                k = self.length(self.arg(ib & 31, cat), 1, "string chunk")
                parts.append((<const char*>self.p)[self.pos:self.pos + k])
                self.pos += k
            joined = b"".join(parts)
            if major == 2:
                return memoryview(joined).toreadonly()
            try:
                return joined.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptFrameError("CBOR text is not UTF-8", at) from None
        if major == 4:
            items = []
            while True:
                self.need(1, "indefinite array")
                if self.p[self.pos] == 0xFF:
                    self.pos += 1
                    return items
                items.append(self.item(depth + 1))
        if major == 5:
            out = {}
            while True:
                self.need(1, "indefinite map")
                if self.p[self.pos] == 0xFF:
                    self.pos += 1
                    return out
                self.entry(out, depth)
        raise CorruptFrameError(f"CBOR major type {major} cannot be indefinite", at)

    cdef object tagged(self, uint64_t tag, object value, Py_ssize_t at):
        if tag == 55799:
            return value
        if 64 <= tag <= 87:
            dt = _DTYPES[tag]
            if dt is None:
                return CborTag(tag, value)
            if type(value) is CompressedArray:
                if value.dtype is not None:
                    raise CorruptFrameError("CBOR typed-array tag applied twice", at)
                return CompressedArray(value.algorithm, value.elem_size, value.data, dt)
            if type(value) is not memoryview:
                raise CorruptFrameError(f"CBOR typed-array tag {tag} on a non-byte-string", at)
            if len(value) % dt.itemsize:
                raise CorruptFrameError(
                    f"CBOR typed array of {len(value)} bytes is not a multiple of {dt.itemsize}", at)
            return _frombuffer(value, dtype=dt)
        if tag == 56500:
            if (type(value) is not list or len(value) != 3 or type(value[0]) is not str
                    or type(value[1]) is not int or value[1] < 0
                    or type(value[2]) is not memoryview):
                raise CorruptFrameError("CBOR tag 56500 needs [algorithm, elem_size, bytes]", at)
            return CompressedArray(value[0], value[1], value[2])
        if tag == 40 or tag == 1040:
            return self.multidim(tag, value, at)
        return CborTag(tag, value)

    cdef object multidim(self, uint64_t tag, object value, Py_ssize_t at):
        if type(value) is not list or len(value) != 2 or type(value[0]) is not list:
            raise CorruptFrameError(f"CBOR tag {tag} needs [dims, array]", at)
        dims = value[0]
        for d in dims:
            if type(d) is not int or d < 0:
                raise CorruptFrameError(f"CBOR tag {tag} dimensions must be unsigned integers", at)
        shape = tuple(dims)
        order = "F" if tag == 1040 else "C"
        arr = value[1]
        if type(arr) is CompressedArray:
            if arr.shape is not None:
                raise CorruptFrameError("CBOR nested multi-dimensional array", at)
            return CompressedArray(arr.algorithm, arr.elem_size, arr.data, arr.dtype, shape, order)
        if isinstance(arr, np.ndarray) and arr.ndim == 1:
            if math.prod(shape) != arr.size:
                raise CorruptFrameError(
                    f"CBOR array of {arr.size} elements does not fit dimensions {list(shape)}", at)
            return arr.reshape(shape, order=order)
        raise CorruptFrameError(f"CBOR tag {tag} needs a typed array", at)


def cbor_decode(buf):
    """Decode the single CBOR item that fills ``buf`` (see the module docstring)."""
    cdef _Walker w = _Walker()
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    w.mv = mv.toreadonly()
    cdef const uint8_t[::1] view = w.mv
    w.n = view.shape[0]
    w.p = &view[0] if w.n else NULL
    w.pos = 0
    value = w.item(0)
    if w.pos != w.n:
        raise CorruptFrameError(f"{w.n - w.pos} trailing bytes after the CBOR item", w.pos)
    return value
