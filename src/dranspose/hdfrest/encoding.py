"""Encoding of values for the wire: raw bytes or JSON with NaN/Infinity tokens.

JSON follows HSDS: compound elements are lists, fixed-length strings are decoded to ``str``,
bool enums are ``true``/``false``; NaN and infinities are written as the tokens ``NaN``,
``Infinity``, ``-Infinity`` (h5pyd and H5Web accept them).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import zlib
from typing import Any

import numpy as np

try:  # optional: ~15x faster JSON for finite numeric arrays
    import orjson
except ImportError:  # pragma: no cover - orjson is optional
    orjson = None  # type: ignore[assignment]

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


def _orjson_ok(arr: np.ndarray) -> bool:
    dt = arr.dtype
    if orjson is None or dt.names is not None or dt.kind not in "biuf":
        return False
    if dt.kind == "f" and (dt.itemsize == 2 or not np.isfinite(arr).all()):
        return False  # orjson has no float16 and writes NaN as null
    return dt.isnative and arr.flags.c_contiguous and arr.ndim > 0


def dumps_value(data: np.ndarray) -> bytes:
    """``{"value": ...}`` for a private array: orjson when it is exact (finite, native
    numeric), else the standard encoder with NaN/Infinity tokens."""
    if _orjson_ok(data):
        return orjson.dumps({"value": data}, option=orjson.OPT_SERIALIZE_NUMPY)  # type: ignore[no-any-return]
    return dumps({"value": jsonable(data)})


#: responses smaller than this are never compressed
COMPRESS_MIN_BYTES = 256 * 1024
_SAMPLE = 64 * 1024


def is_loopback(host: str | None) -> bool:
    """True for a client on this machine (or unknown/unix socket): compression never pays."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def maybe_gzip(body: bytes, accept_encoding: str | None, client_host: str | None
               ) -> tuple[bytes, dict[str, str]]:
    """Compress only when it pays: a remote client that accepts gzip, a large body, and a
    sample that shrinks to at most half at level 1 (fast). Returns (body, extra headers)."""
    if (len(body) < COMPRESS_MIN_BYTES or "gzip" not in (accept_encoding or "")
            or is_loopback(client_host)):
        return body, {}
    sample = body[:_SAMPLE]
    if len(zlib.compress(sample, 1)) * 2 > len(sample):
        return body, {}
    return gzip.compress(body, compresslevel=1, mtime=0), {"Content-Encoding": "gzip"}
