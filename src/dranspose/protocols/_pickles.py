"""Shared decoding helpers of the non-detector protocols: wire pickles (PROTOCOLS §13) and JSON frames.

Pickles arriving from contrast, the Xspress3 streamer and the LeCroy server are read by
:func:`load_wire_pickle`, which admits only the pickle subset PROTOCOLS §13 describes:

* opcodes: the ones seen in the captures plus their size variants (``BININT2``, ``LONG1``,
  ``BINBYTES``, ``LONG_BINPUT``, ...); no ``INST``/``OBJ``/``NEWOBJ``, no persistent ids,
  no extension registry, no out-of-band buffers, no text-mode (protocol 0) opcodes;
* globals: numpy's ``_reconstruct``/``ndarray``/``dtype`` (both ``numpy.core`` and
  ``numpy._core`` spellings) and numpy's ``scalar``, ``collections.OrderedDict`` and
  ``_codecs.encode``.

Everything else, and every corrupt pickle, raises :class:`~dranspose.errors.ProtocolError`;
no code from the wire runs. Functions here are pure and thread-safe.
"""

from __future__ import annotations

import json
import pickletools
from typing import Any

import zmq

from dranspose.errors import ProtocolError
from dranspose.safe_pickle import compile_allow, restricted_loads

WIRE_GLOBALS = compile_allow(
    {
        "numpy.core.multiarray:_reconstruct",
        "numpy._core.multiarray:_reconstruct",
        "numpy.core.multiarray:scalar",
        "numpy._core.multiarray:scalar",
        "numpy:ndarray",
        "numpy:dtype",
        "collections:OrderedDict",
        "_codecs:encode",
    }
)

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


def frame_bytes(frame: Any) -> bytes:
    """The content of a frame as ``bytes`` (``zmq.Frame.bytes`` is cached by pyzmq; copies a memoryview)."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, zmq.Frame):
        return frame.bytes
    try:
        return bytes(frame)
    except TypeError as exc:
        raise ProtocolError(f"frame of type {type(frame).__name__} is not a buffer") from exc


def frame_view(frame: Any) -> memoryview:
    """A read-only memoryview on a frame, without copying."""
    try:
        view = memoryview(frame)
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        return view.toreadonly()
    except TypeError as exc:
        raise ProtocolError(f"frame of type {type(frame).__name__} is not a buffer") from exc


def loads_json(frame: Any, what: str = "message") -> Any:
    """Parse a JSON frame. Any failure (bad UTF-8, bad JSON, absurd nesting) is a ProtocolError."""
    data = frame_bytes(frame)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        head = data[:40]
        raise ProtocolError(f"{what} is not valid JSON ({exc.__class__.__name__}: {exc}); starts {head!r}") from exc


def loads_json_object(frame: Any, what: str = "message") -> dict[str, Any]:
    """Parse a JSON frame that must hold an object."""
    obj = loads_json(frame, what)
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is JSON {type(obj).__name__}, expected an object")
    return obj


def dumps_json(obj: Any) -> bytes:
    """Compact JSON (no spaces), the form dranspose re-emits."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def check_opcodes(data: bytes) -> None:
    """Raise ProtocolError unless every opcode of ``data`` is in :data:`WIRE_OPCODES`."""
    pos: int | None = 0
    try:
        for op, _arg, pos in pickletools.genops(data):  # noqa: B007
            if op.name not in WIRE_OPCODES:
                raise ProtocolError(f"pickle opcode {op.name} at byte {pos} is not in the wire subset")
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
        obj = restricted_loads(data, WIRE_GLOBALS)
    except ProtocolError:
        raise
    except (Exception, RecursionError) as exc:  # UnpicklingRefused, UnpicklingError, TypeError, MemoryError...
        raise ProtocolError(f"{what} rejected: {exc.__class__.__name__}: {exc}") from exc
    _check_arrays(obj, len(data), what)
    return obj


def _check_arrays(obj: Any, limit: int, what: str, depth: int = 0) -> None:
    """Reject arrays larger than the pickle (only a direct ``ndarray(shape)`` call makes those:
    uninitialised memory, never what a producer sends)."""
    import numpy as np

    if depth > 50:
        raise ProtocolError(f"{what} nests deeper than 50 containers")
    if isinstance(obj, np.ndarray):
        if obj.nbytes > limit:
            raise ProtocolError(f"{what} holds an array of {obj.nbytes} bytes, larger than the pickle itself")
    elif isinstance(obj, dict):
        for value in obj.values():
            _check_arrays(value, limit, what, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for value in obj:
            _check_arrays(value, limit, what, depth + 1)


# --- raw arrays off the wire -------------------------------------------------------------------

WIRE_DTYPES: frozenset[str] = frozenset(
    {"uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"}
)
MAX_DIMS = 8


def check_shape(shape: Any, what: str = "shape") -> tuple[int, ...]:
    """Validate a JSON shape: a list of at most 8 non-negative ints."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_DIMS:
        raise ProtocolError(f"{what} {shape!r:.80} is not a list of at most {MAX_DIMS} ints")
    for n in shape:
        if type(n) is not int or n < 0:
            raise ProtocolError(f"{what} {shape!r:.80} has a bad dimension {n!r:.20}")
    return tuple(shape)


def wire_dtype(name: Any, what: str = "type") -> Any:
    """The little-endian numpy dtype for a wire type name (``uint32``, ``float64``, ...)."""
    import numpy as np

    if not isinstance(name, str) or name not in WIRE_DTYPES:
        raise ProtocolError(f"{what} {name!r:.40} is not one of {sorted(WIRE_DTYPES)}")
    return np.dtype(name).newbyteorder("<")


def array_from_frame(frame: Any, dtype_name: Any, shape: Any, what: str = "array") -> Any:
    """A read-only numpy view of a raw little-endian C-order array frame (zero-copy).

    The view keeps the frame alive. Raises ProtocolError if the byte length does not match.
    """
    import numpy as np

    dt = wire_dtype(dtype_name, f"{what} type")
    dims = check_shape(shape, f"{what} shape")
    count = 1
    for n in dims:
        count *= n
    view = frame_view(frame)
    if view.nbytes != count * dt.itemsize:
        raise ProtocolError(
            f"{what} has {view.nbytes} bytes, expected {count * dt.itemsize} for {dtype_name} {list(dims)}"
        )
    return np.frombuffer(view, dtype=dt).reshape(dims)
