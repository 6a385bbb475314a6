"""Wire pickles (PROTOCOLS §13): the only pickles dranspose reads off the network.

Pickles arriving from contrast, the Xspress3 streamer and the LeCroy server are read by
:func:`load_wire_pickle`, which admits only the subset PROTOCOLS §13 describes:

* opcodes: the ones seen in the captures plus their size variants (``BININT2``, ``LONG1``,
  ``BINBYTES``, ``LONG_BINPUT``, ...); no ``INST``/``OBJ``/``NEWOBJ``, no persistent ids,
  no extension registry, no out-of-band buffers, no text-mode (protocol 0) opcodes;
* globals: numpy's array reconstruction (``_reconstruct``/``ndarray``), ``dtype`` and
  ``scalar`` (both ``numpy.core`` and ``numpy._core`` spellings), ``collections.OrderedDict``
  ``_codecs.encode`` (latin-1 only) and ``bytes()`` (empty only).

numpy objects are never built by numpy's own pickle hooks. Each of those globals resolves to
a stand-in here that reads its arguments and its ``BUILD`` state as plain data:

* a dtype is rebuilt from a list of plain names (``WIRE_DTYPE_NAMES``: bool, ints, floats,
  complex, fixed-size ``U``/``S`` strings) and a byte order; any other state (field names,
  fields, metadata, flags) is refused, so ``BUILD`` never reaches ``dtype.__setstate__`` and no
  structured or object (``hasobject``) dtype can be made;
* an array is rebuilt with :func:`numpy.frombuffer` from its raw bytes, whose length must
  match its shape and dtype exactly (never an allocation the pickle does not pay for);
* a scalar likewise from exactly ``itemsize`` bytes.

Everything else, and every corrupt pickle, raises :class:`~dranspose.errors.ProtocolError`;
no code from the wire runs. Functions here are pure and thread-safe.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from dranspose.errors import ProtocolError
from dranspose.protocols._wire import frame_bytes

WIRE_OPCODES: frozenset[str] = frozenset(
    {
        # seen in the captures (PROTOCOLS §13)
        "PROTO", "FRAME", "MARK", "STOP", "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1",
        "BINFLOAT", "BINUNICODE", "SHORT_BINUNICODE", "SHORT_BINBYTES", "EMPTY_LIST", "APPEND",
        "APPENDS", "EMPTY_DICT", "SETITEM", "SETITEMS", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
        "TUPLE3", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "BINPUT", "BINGET", "MEMOIZE",
        # size variants of the same kinds of values (larger ints, strings, bytes, memo indices)
        "BININT2", "LONG1", "BINBYTES", "BINBYTES8", "BINUNICODE8", "LONG_BINPUT", "LONG_BINGET",
        "EMPTY_SET", "ADDITEMS", "FROZENSET", "POP", "POP_MARK", "DUP",
    }
)  # fmt: skip

MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 50

# dtype names a wire pickle may name (numpy's own pickle spelling), flexible sizes aside
WIRE_DTYPE_NAMES: frozenset[str] = frozenset(
    {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"}
)
_FLEXIBLE = re.compile(r"^([US])([1-9][0-9]{0,6})$")
_BYTE_ORDERS = frozenset({"<", ">", "|", "="})


class _WireDtype:
    """Stand-in for ``numpy.dtype(name, align, copy)``; its BUILD state is read as plain data."""

    __slots__ = ("name", "order", "built")

    def __init__(self, name: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(name, str) or (name not in WIRE_DTYPE_NAMES and not _FLEXIBLE.match(name)):
            raise ProtocolError(f"wire pickle dtype {name!r:.40} is not one of the plain types")
        if type(align) not in (bool, int) or align != 0 or type(copy) not in (bool, int) or copy not in (0, 1):
            raise ProtocolError("wire pickle dtype with unexpected arguments")
        self.name = name
        self.order = "="
        self.built = False

    def __setstate__(self, state: Any) -> None:
        """Accept only numpy's state of a plain dtype: (3, byteorder, None, None, None, size,
        alignment, flags) with the values numpy writes for that type; keep the byte order."""
        if self.built:
            raise ProtocolError("wire pickle dtype built twice")
        if not isinstance(state, tuple) or len(state) != 8 or state[0] != 3 or state[1] not in _BYTE_ORDERS:
            raise ProtocolError(f"wire pickle dtype state {state!r:.80} is not a plain dtype's")
        if state[2:5] != (None, None, None):
            raise ProtocolError("wire pickle dtype with fields or metadata refused (structured dtype)")
        flex = _FLEXIBLE.match(self.name)
        if flex is None:
            expected: tuple[Any, ...] = (-1, -1, 0)
        elif flex.group(1) == "U":
            expected = (4 * int(flex.group(2)), 4, 8)
        else:
            expected = (int(flex.group(2)), 1, 0)
        if state[5:] != expected:
            raise ProtocolError(f"wire pickle dtype {self.name} state {state[5:]!r:.60} refused")
        self.order = state[1]
        self.built = True

    def resolve(self) -> np.dtype[Any]:
        dt = np.dtype(self.name)
        if self.order == "<":
            dt = dt.newbyteorder("<")
        elif self.order == ">":
            dt = dt.newbyteorder(">")
        if dt.hasobject or dt.fields is not None:  # unreachable with the names above; kept as the rule
            raise ProtocolError(f"wire pickle dtype {dt} refused")
        return dt


def _dtype_of(value: Any, what: str) -> np.dtype[Any]:
    if not isinstance(value, _WireDtype):
        raise ProtocolError(f"wire pickle {what} without a dtype")
    return value.resolve()


class _NdarrayClass:
    """What the global ``numpy.ndarray`` resolves to: only a marker for ``_reconstruct``."""

    def __call__(self, *args: Any) -> None:
        raise ProtocolError("numpy.ndarray called directly (uninitialised memory); only _reconstruct may use it")


_NDARRAY = _NdarrayClass()


class _WireArray:
    """Stand-in for ``_reconstruct(ndarray, (0,), b'b')``; BUILD gives it shape, dtype, bytes."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray[Any, Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise ProtocolError("wire pickle array built twice")
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise ProtocolError("wire pickle array state is not (1, shape, dtype, fortran, data)")
        _, shape, dtype, fortran, data = state
        dt = _dtype_of(dtype, "array")
        if not isinstance(shape, tuple) or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
            raise ProtocolError(f"wire pickle array shape {shape!r:.60} is not a tuple of sizes")
        if not isinstance(data, bytes):
            raise ProtocolError(f"wire pickle array data is a {type(data).__name__}, expected bytes")
        need = math.prod(shape) * dt.itemsize
        if len(data) != need:
            raise ProtocolError(f"wire pickle array has {len(data)} bytes, its shape {shape} of {dt} needs {need}")
        flat = np.frombuffer(data, dtype=dt).copy()  # own, writable memory, as numpy's unpickling gives
        self.array = flat.reshape(shape, order="F" if fortran is True else "C")


def _reconstruct(cls: Any, shape: Any, code: Any) -> _WireArray:
    if cls is not _NDARRAY or shape != (0,) or code != b"b":
        raise ProtocolError("wire pickle _reconstruct with unexpected arguments")
    return _WireArray()


def _scalar(dtype: Any, data: Any = None) -> Any:
    dt = _dtype_of(dtype, "scalar")
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise ProtocolError(f"wire pickle scalar of {dt} needs {dt.itemsize} bytes")
    return np.frombuffer(data, dtype=dt)[0]


def _latin1(text: Any, encoding: Any) -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ProtocolError("wire pickle _codecs.encode other than latin-1 text")
    return text.encode("latin-1")


def _empty_bytes(*args: Any) -> bytes:
    """Protocol 2 spells ``b""`` as ``bytes()``; any argument (``bytes(n)`` allocates) is refused."""
    if args:
        raise ProtocolError("wire pickle bytes() with arguments")
    return b""


_GLOBALS: dict[tuple[str, str], Any] = {
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy", "dtype"): _WireDtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _latin1,
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _GLOBALS[(_core, "_reconstruct")] = _reconstruct
    _GLOBALS[(_core, "scalar")] = _scalar
WIRE_GLOBALS: frozenset[str] = frozenset(f"{m}:{n}" for m, n in _GLOBALS)


class _WireUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _GLOBALS.get((module, name))
        if found is None:
            raise ProtocolError(f"wire pickle global {module}.{name} is not allowed")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise ProtocolError("wire pickle persistent ids are not allowed")


_PUTS = frozenset({"BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"BINGET", "LONG_BINGET"})


def check_opcodes(data: bytes) -> None:
    """Raise ProtocolError unless every opcode of ``data`` is in :data:`WIRE_OPCODES` and memo
    indices are sequential, as pickle writes them (CPython's unpickler sizes its memo by the
    largest index: one ``LONG_BINPUT 88801649`` would cost 700 MB)."""
    pos: int | None = 0
    memo = 0  # entries stored so far
    try:
        for op, arg, pos in pickletools.genops(data):
            name = op.name
            if name not in WIRE_OPCODES:
                raise ProtocolError(f"pickle opcode {name} at byte {pos} is not in the wire subset")
            if name in _PUTS:
                if arg != memo:
                    raise ProtocolError(f"pickle memo index {arg} at byte {pos} out of sequence (expected {memo})")
                memo += 1
            elif name == "MEMOIZE":
                memo += 1
            elif name in _GETS and not (isinstance(arg, int) and 0 <= arg < memo):
                raise ProtocolError(f"pickle memo index {arg} at byte {pos} was never stored")
    except ProtocolError:
        raise
    except Exception as exc:  # genops raises ValueError and friends for corrupt pickles
        raise ProtocolError(f"corrupt pickle near byte {pos}: {exc}") from exc


def load_wire_pickle(frame: Any, what: str = "pickle") -> Any:
    """Unpickle one wire pickle restricted to PROTOCOLS §13; ProtocolError on anything else.

    Copies: the frame is read into ``bytes`` once (pickle needs a contiguous buffer); arrays
    built from it own their memory.
    """
    data = frame_bytes(frame)
    if len(data) > MAX_PICKLE_BYTES:
        raise ProtocolError(f"{what} of {len(data)} bytes exceeds {MAX_PICKLE_BYTES}")
    check_opcodes(data)
    try:
        obj = _WireUnpickler(io.BytesIO(data)).load()
        return _finish(obj, {}, 0)
    except ProtocolError as exc:
        raise ProtocolError(f"{what} rejected: {exc}") from exc
    except (Exception, RecursionError) as exc:  # UnpicklingError, TypeError, MemoryError...
        raise ProtocolError(f"{what} rejected: {exc.__class__.__name__}: {exc}") from exc


def _finish(obj: Any, done: dict[int, Any], depth: int) -> Any:
    """Replace the stand-ins by real numpy objects (shared ones stay shared); refuse stand-ins
    that were never completed and nesting deeper than :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"nests deeper than {MAX_DEPTH} containers")
    if isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic)):
        return obj
    key = id(obj)
    if key in done:
        return done[key]
    out: Any
    if isinstance(obj, _WireArray):
        if obj.array is None:
            raise ProtocolError("array without its state")
        out = obj.array
    elif isinstance(obj, _WireDtype):
        out = obj.resolve()
    elif isinstance(obj, dict):
        done[key] = obj
        for k in list(obj):
            if not isinstance(k, (str, bytes, int, float, type(None))):
                raise ProtocolError(f"has a dict key of type {type(k).__name__}")
            obj[k] = _finish(obj[k], done, depth + 1)
        return obj
    elif isinstance(obj, list):
        done[key] = obj
        obj[:] = [_finish(v, done, depth + 1) for v in obj]
        return obj
    elif isinstance(obj, tuple):
        out = tuple(_finish(v, done, depth + 1) for v in obj)
    elif isinstance(obj, (set, frozenset)):
        out = type(obj)(_finish(v, done, depth + 1) for v in obj)
    elif isinstance(obj, complex):
        return obj
    else:
        raise ProtocolError(f"holds a {type(obj).__name__}")
    done[key] = out
    return out
