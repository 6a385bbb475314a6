"""Encoding of values for the wire: raw bytes or JSON with NaN/Infinity tokens.

JSON follows HSDS: compound elements are lists, fixed-length strings are decoded to ``str``,
bool enums are ``true``/``false``; NaN and infinities are written as the tokens ``NaN``,
``Infinity``, ``-Infinity`` (h5pyd and H5Web accept them).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

JSON_MEDIA = "application/json"
BINARY_MEDIA = "application/octet-stream"


def _clean(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        return [_clean(x) for x in obj]
    if isinstance(obj, bytes):
        return obj.rstrip(b"\0").decode("utf-8", errors="replace")
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def jsonable(value: Any) -> Any:
    """Convert a (small, private) array or scalar into plain JSON-able Python objects."""
    if isinstance(value, np.ndarray):
        out = value.tolist()
        if value.dtype.names is not None or value.dtype.kind in "SO":
            out = _clean(out)
        return out
    return _clean(value)


def dumps(obj: Any) -> bytes:
    """JSON text as bytes; NaN/Infinity allowed."""
    return json.dumps(obj, allow_nan=True, separators=(",", ":")).encode()


def wants_binary(accept: str | None) -> bool:
    """True if the client asked for raw bytes."""
    return bool(accept) and BINARY_MEDIA in accept  # type: ignore[operator]
