"""Plain value types the CBOR walkers (compiled and reference) return for special items."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class CborTag:
    """A tag the walker does not interpret (e.g. 0 = RFC 3339 date text, 1 = epoch time)."""

    tag: int
    value: Any


@dataclass(frozen=True, slots=True)
class CborSimple:
    """A CBOR simple value other than false/true/null/undefined."""

    value: int


@dataclass(frozen=True, slots=True)
class CompressedArray:
    """A DECTRIS tag-56500 payload, not yet decompressed.

    ``data`` is a read-only zero-copy memoryview into the message; ``dtype`` and ``shape``
    come from the enclosing RFC 8746 typed-array tag and tag 40 when present; ``order`` is
    ``"F"`` under tag 1040 (column-major).
    """

    algorithm: str
    elem_size: int
    data: memoryview
    dtype: np.dtype | None = None
    shape: tuple[int, ...] | None = None
    order: str = "C"


def typed_array_dtype(tag: int) -> np.dtype | None:
    """The numpy dtype of RFC 8746 typed-array tag 64..87, or None (reserved/unsupported)."""
    if tag < 64 or tag > 87 or tag in (76, 83, 87):
        return None
    f = (tag >> 4) & 1
    s = (tag >> 3) & 1
    e = (tag >> 2) & 1
    ll = tag & 3
    size = 1 << (f + ll)
    if tag == 68:
        return np.dtype(np.uint8)
    if f:
        kind = "f"
    elif s:
        kind = "i"
    else:
        kind = "u"
    order = "<" if e else ">"
    if size == 1:
        order = "|"
    return np.dtype(f"{order}{kind}{size}")
