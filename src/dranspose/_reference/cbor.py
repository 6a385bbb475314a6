"""Pure-Python CBOR walker (RFC 8949) with RFC 8746 typed arrays and DECTRIS tag 56500.

Contract (shared with ``_fastpath.cborwalk.cbor_decode``): decodes exactly one item that must
span the whole buffer. Byte strings come back as read-only memoryview slices of the input
(zero-copy), typed arrays as numpy views into it (possibly unaligned), tag 56500 as
:class:`CompressedArray`, other tags as :class:`CborTag`. Malformed or truncated input raises
:class:`~dranspose.errors.CorruptFrameError` with the byte offset; nesting deeper than
``MAX_DEPTH`` is refused.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import numpy as np

from dranspose._reference.cbor_types import CborSimple, CborTag, CompressedArray, typed_array_dtype
from dranspose.errors import CorruptFrameError

MAX_DEPTH = 64


def _half(bits: int) -> float:
    exp = (bits >> 10) & 0x1F
    mant = bits & 0x3FF
    if exp == 0:
        val = math.ldexp(mant, -24)
    elif exp == 31:
        val = math.nan if mant else math.inf
    else:
        val = math.ldexp(mant + 1024, exp - 25)
    return -val if bits & 0x8000 else val


class _Walker:
    def __init__(self, buf: Any) -> None:
        mv = memoryview(buf)
        if mv.ndim != 1 or mv.format != "B":
            mv = mv.cast("B")
        self.mv = mv.toreadonly()
        self.n = len(mv)
        self.pos = 0

    def need(self, k: int, what: str) -> None:
        if k < 0 or self.pos + k > self.n:
            raise CorruptFrameError(f"CBOR {what} runs past the end of the message", self.pos)

    def arg(self, info: int, at: int) -> int:
        if info < 24:
            return info
        if info > 27:
            raise CorruptFrameError(f"CBOR reserved additional information {info}", at)
        k = 1 << (info - 24)
        self.need(k, "argument")
        val = int.from_bytes(self.mv[self.pos : self.pos + k], "big")
        self.pos += k
        return val

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CorruptFrameError("CBOR nesting too deep", self.pos)
        self.need(1, "item")
        at = self.pos
        ib = self.mv[at]
        self.pos += 1
        major, info = ib >> 5, ib & 31
        if major == 7:
            return self.simple(info, at)
        if info == 31:
            return self.indefinite(major, depth, at)
        val = self.arg(info, at)
        if major == 0:
            return val
        if major == 1:
            return -1 - val
        if major in (2, 3):
            self.need(val, "string")
            chunk = self.mv[self.pos : self.pos + val]
            self.pos += val
            if major == 2:
                return chunk
            try:
                return str(chunk, "utf-8")
            except UnicodeDecodeError:
                raise CorruptFrameError("CBOR text is not UTF-8", at) from None
        if major == 4:
            self.need(val, "array")
            return [self.item(depth + 1) for _ in range(val)]
        if major == 5:
            self.need(2 * val, "map")
            out: dict[Any, Any] = {}
            for _ in range(val):
                self.entry(out, depth)
            return out
        return self.tagged(val, self.item(depth + 1), at)

    def entry(self, out: dict[Any, Any], depth: int) -> None:
        kat = self.pos
        key = self.item(depth + 1)
        if isinstance(key, memoryview):
            key = bytes(key)
        try:
            hash(key)
        except TypeError:
            raise CorruptFrameError("CBOR map key is not hashable", kat) from None
        out[key] = self.item(depth + 1)

    def simple(self, info: int, at: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info < 24:
            return CborSimple(info)
        if info == 24:
            self.need(1, "simple value")
            v = self.mv[self.pos]
            self.pos += 1
            if v < 32:
                raise CorruptFrameError("CBOR two-byte simple value below 32", at)
            return CborSimple(v)
        if info in (25, 26, 27):
            k = 1 << (info - 24)
            self.need(k, "float")
            raw = bytes(self.mv[self.pos : self.pos + k])
            self.pos += k
            if k == 2:
                return _half(int.from_bytes(raw, "big"))
            return struct.unpack(">f" if k == 4 else ">d", raw)[0]
        if info == 31:
            raise CorruptFrameError("CBOR unexpected break", at)
        raise CorruptFrameError(f"CBOR reserved simple value {info}", at)

    def indefinite(self, major: int, depth: int, at: int) -> Any:
        if major in (2, 3):
            parts = []
            while True:
                self.need(1, "indefinite string")
                if self.mv[self.pos] == 0xFF:
                    self.pos += 1
                    break
                cat = self.pos
                ib = self.mv[cat]
                self.pos += 1
                if ib >> 5 != major or ib & 31 == 31:
                    raise CorruptFrameError("CBOR bad chunk in an indefinite string", cat)
                k = self.arg(ib & 31, cat)
                self.need(k, "string chunk")
                parts.append(bytes(self.mv[self.pos : self.pos + k]))
                self.pos += k
            joined = b"".join(parts)
            if major == 2:
                return memoryview(joined).toreadonly()
            try:
                return joined.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptFrameError("CBOR text is not UTF-8", at) from None
        if major == 4:
            items: list[Any] = []
            while True:
                self.need(1, "indefinite array")
                if self.mv[self.pos] == 0xFF:
                    self.pos += 1
                    return items
                items.append(self.item(depth + 1))
        if major == 5:
            out: dict[Any, Any] = {}
            while True:
                self.need(1, "indefinite map")
                if self.mv[self.pos] == 0xFF:
                    self.pos += 1
                    return out
                self.entry(out, depth)
        raise CorruptFrameError(f"CBOR major type {major} cannot be indefinite", at)

    def tagged(self, tag: int, value: Any, at: int) -> Any:
        if tag == 55799:
            return value
        if 64 <= tag <= 87:
            dt = typed_array_dtype(tag)
            if dt is None:
                return CborTag(tag, value)
            if isinstance(value, CompressedArray):
                if value.dtype is not None:
                    raise CorruptFrameError("CBOR typed-array tag applied twice", at)
                return CompressedArray(value.algorithm, value.elem_size, value.data, dt)
            if not isinstance(value, memoryview):
                raise CorruptFrameError(f"CBOR typed-array tag {tag} on a non-byte-string", at)
            if len(value) % dt.itemsize:
                raise CorruptFrameError(
                    f"CBOR typed array of {len(value)} bytes is not a multiple of {dt.itemsize}", at
                )
            return np.frombuffer(value, dtype=dt)
        if tag == 56500:
            return self.compressed(value, at)
        if tag in (40, 1040):
            return self.multidim(tag, value, at)
        return CborTag(tag, value)

    @staticmethod
    def compressed(value: Any, at: int) -> CompressedArray:
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not isinstance(value[0], str)
            or type(value[1]) is not int
            or value[1] < 0
            or not isinstance(value[2], memoryview)
        ):
            raise CorruptFrameError("CBOR tag 56500 needs [algorithm, elem_size, bytes]", at)
        return CompressedArray(value[0], value[1], value[2])

    @staticmethod
    def multidim(tag: int, value: Any, at: int) -> Any:
        if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], list):
            raise CorruptFrameError(f"CBOR tag {tag} needs [dims, array]", at)
        dims = value[0]
        if not all(type(d) is int and d >= 0 for d in dims):
            raise CorruptFrameError(f"CBOR tag {tag} dimensions must be unsigned integers", at)
        shape = tuple(dims)
        order: Literal["C", "F"] = "F" if tag == 1040 else "C"
        arr = value[1]
        if isinstance(arr, CompressedArray):
            if arr.shape is not None:
                raise CorruptFrameError("CBOR nested multi-dimensional array", at)
            return CompressedArray(arr.algorithm, arr.elem_size, arr.data, arr.dtype, shape, order)
        if isinstance(arr, np.ndarray) and arr.ndim == 1:
            if math.prod(shape) != arr.size:
                raise CorruptFrameError(
                    f"CBOR array of {arr.size} elements does not fit dimensions {list(shape)}", at
                )
            return arr.reshape(shape, order=order)
        raise CorruptFrameError(f"CBOR tag {tag} needs a typed array", at)


def cbor_decode(buf: Any) -> Any:
    """Decode the single CBOR item that fills ``buf`` (see the module contract)."""
    w = _Walker(buf)
    value = w.item(0)
    if w.pos != w.n:
        raise CorruptFrameError(f"{w.n - w.pos} trailing bytes after the CBOR item", w.pos)
    return value
