"""JSON of the data path's headers, read without :func:`json.loads`' per-call encoding sniffing,
and of the messages between dranspose's own components (orjson, with :mod:`json` behind it).

Headers are UTF-8 (RFC 8259 §8.1); anything else is a ValueError like any malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DECODE = json.JSONDecoder().decode


def loads_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON document; raises ValueError (incl. UnicodeDecodeError) or RecursionError."""
    return _DECODE(raw if isinstance(raw, str) else bytes(raw).decode("utf-8"))


def loads_checked(raw: bytes | bytearray | memoryview | str) -> Any:
    """:func:`loads_json` for messages whose numbers are checked afterwards: orjson reads what
    it can (it reads integers past 64 bits as floats, which such checks refuse like the
    integer); what it refuses (NaN, lone surrogates, deep nesting, bad UTF-8) :func:`loads_json`
    reads, giving json's result or json's precise error."""
    try:
        return orjson.loads(raw)
    except (ValueError, TypeError):
        return loads_json(raw)


def dumps_compact(obj: Any) -> bytes:
    """Compact UTF-8 JSON: orjson, or json for what orjson cannot write (integers past 64 bits,
    keys that are not strings)."""
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(obj, separators=(",", ":")).encode()


def join_objects(*objects: bytes) -> bytes:
    """One JSON object text with the members of each of ``objects`` (JSON object texts, no
    whitespace around their braces), in order: for splicing a document kept as text into
    another without parsing it. The caller keeps the member names distinct."""
    members = [inner for inner in (text[1:-1] for text in objects) if inner.strip()]
    return b"{" + b",".join(members) + b"}"
