"""Shared helpers of the wire decoders: frames as bytes or views, JSON in and out, raw arrays.

:func:`dumps_json` is the one compact-JSON encoder of the protocols (and of the synthetic
sources). Every decoding function raises :class:`~dranspose.errors.ProtocolError` for bad input.
Pure and thread-safe.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import zmq

from dranspose.errors import ProtocolError
from dranspose.transport.jsonio import loads_json as loads_utf8_json


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
    """Parse a JSON frame. Any failure (bad UTF-8, bad JSON, absurd nesting) is a ProtocolError.
    UTF-8 is read directly; anything else :func:`json.loads` accepts (UTF-16/32, a BOM) is
    read by it, as before."""
    data = frame_bytes(frame)
    try:
        try:
            return loads_utf8_json(data)
        except ValueError:  # not UTF-8 JSON: json.loads detects other encodings (or fails alike)
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


def dumps_json(obj: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON (no spaces), the form dranspose re-emits; ``sort_keys`` as DECTRIS writes."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys, allow_nan=True).encode()

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
    if not isinstance(name, str) or name not in WIRE_DTYPES:
        raise ProtocolError(f"{what} {name!r:.40} is not one of {sorted(WIRE_DTYPES)}")
    return np.dtype(name).newbyteorder("<")


def array_from_frame(frame: Any, dtype_name: Any, shape: Any, what: str = "array") -> Any:
    """A read-only numpy view of a raw little-endian C-order array frame (zero-copy).

    The view keeps the frame alive. Raises ProtocolError if the byte length does not match.
    """
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
