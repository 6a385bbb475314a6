"""JSON of the data path's headers, read without :func:`json.loads`' per-call encoding sniffing.

Headers are UTF-8 (RFC 8259 §8.1); anything else is a ValueError like any malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

_DECODE = json.JSONDecoder().decode


def loads_json(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON document; raises ValueError (incl. UnicodeDecodeError) or RecursionError."""
    return _DECODE(raw if isinstance(raw, str) else bytes(raw).decode("utf-8"))
