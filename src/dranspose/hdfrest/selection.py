"""Selections of the HDF REST API: parse, validate against a shape, apply to an array.

Grammar of ``select`` (one item per dimension, inside ``[...]``, comma-separated):
``i`` | ``a:b`` | ``a:b:s`` | ``:`` | empty | ``[i,j,...]``. Bounds are checked against the
current shape: out of range, zero step, a > b, negative numbers, or a rank mismatch raise
:class:`SelectionError` (HTTP 400). As in HSDS, an integer index keeps its dimension (length 1).
Point selections (POST) are an ``N x rank`` array of indices.

Applying a selection copies only the selected elements: slices are views; index lists and
points are gathered from the sliced view. Index lists may not repeat an index, so no
selection is larger than its dataset; :func:`check_size` caps the output (elements and
bytes, HTTP 413) before anything is allocated.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from dranspose.hdfrest.errors import SelectionError

DimSel = Union[slice, tuple[int, ...]]


@dataclass(frozen=True)
class Selection:
    """A hyperslab/fancy selection: per dimension a ``slice`` (normalised, non-negative
    start/stop, step >= 1) or a tuple of indices."""

    dims: tuple[DimSel, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        out = []
        for d in self.dims:
            if isinstance(d, slice):
                out.append(max(0, -(-(d.stop - d.start) // d.step)))
            else:
                out.append(len(d))
        return tuple(out)

    def first_dim(self) -> DimSel | None:
        return self.dims[0] if self.dims else None


@dataclass(frozen=True)
class Points:
    """A point selection: ``coords`` is an ``(N, rank)`` int64 array, validated in range."""

    coords: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.coords.shape[0]),)


def full(shape: Sequence[int]) -> Selection:
    """The selection of everything."""
    return Selection(tuple(slice(0, n, 1) for n in shape))


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise SelectionError(f"unbalanced brackets in selection {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SelectionError(f"unbalanced brackets in selection {text!r}")
    parts.append("".join(cur))
    return parts


def _int(tok: str, what: str) -> int:
    tok = tok.strip()
    try:
        val = int(tok)
    except ValueError:
        raise SelectionError(f"{what} {tok!r} is not an integer") from None
    if val < 0:
        raise SelectionError(f"{what} {val} is negative")
    return val


def _parse_dim(tok: str, n: int, dim: int) -> DimSel:
    tok = tok.strip()
    if tok in ("", ":", "::"):
        return slice(0, n, 1)
    if tok.startswith("["):
        if not tok.endswith("]"):
            raise SelectionError(f"dimension {dim}: malformed index list {tok!r}")
        items = [t for t in tok[1:-1].split(",")]
        if not items or any(t.strip() == "" for t in items):
            raise SelectionError(f"dimension {dim}: empty index in list {tok!r}")
        if len(items) > n:
            raise SelectionError(f"dimension {dim}: {len(items)} indices for an extent of {n} (duplicates are refused)")
        idx = tuple(_int(t, f"dimension {dim}: index") for t in items)
        for i in idx:
            if i >= n:
                raise SelectionError(f"dimension {dim}: index {i} out of range (extent {n})")
        if len(set(idx)) != len(idx):
            raise SelectionError(f"dimension {dim}: duplicate index in list (each index at most once)")
        return idx
    if ":" in tok:
        parts = tok.split(":")
        if len(parts) > 3:
            raise SelectionError(f"dimension {dim}: malformed slice {tok!r}")
        start = _int(parts[0], f"dimension {dim}: start") if parts[0].strip() else 0
        stop = _int(parts[1], f"dimension {dim}: stop") if parts[1].strip() else n
        step = 1
        if len(parts) == 3 and parts[2].strip():
            step = _int(parts[2], f"dimension {dim}: step")
            if step == 0:
                raise SelectionError(f"dimension {dim}: step must be >= 1")
        if start > stop or stop > n:
            raise SelectionError(
                f"dimension {dim}: slice {start}:{stop} out of range (extent {n})"
            )
        return slice(start, stop, step)
    i = _int(tok, f"dimension {dim}: index")
    if i >= n:
        raise SelectionError(f"dimension {dim}: index {i} out of range (extent {n})")
    return slice(i, i + 1, 1)


def parse_select(text: str | None, shape: Sequence[int]) -> Selection:
    """Parse ``text`` against ``shape``. None/empty selects everything. For scalars
    (``shape == ()``) any selection selects the single element (as HSDS does)."""
    shape = tuple(shape)
    if text is None or text.strip() in ("", "[]") or shape == ():
        return full(shape)
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise SelectionError(f"selection {text!r} must be enclosed in [...]")
    toks = _split_top(text[1:-1])
    if len(toks) != len(shape):
        raise SelectionError(
            f"selection {text!r} has rank {len(toks)}, the dataset has rank {len(shape)}"
        )
    return Selection(tuple(_parse_dim(t, n, d) for d, (t, n) in enumerate(zip(toks, shape))))


def parse_points(body: bytes | Sequence[Any], shape: Sequence[int]) -> Points:
    """Parse a point list: raw ``N x rank`` uint64 little-endian bytes, or a JSON list of
    coordinates (lists, or plain ints for rank 1). Checks rank and bounds."""
    shape = tuple(shape)
    rank = len(shape)
    if rank == 0:
        raise SelectionError("point selection on a scalar dataset")
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        if len(raw) % (8 * rank):
            raise SelectionError(
                f"point selection of {len(raw)} bytes is not a multiple of 8 x rank {rank}"
            )
        coords = np.frombuffer(raw, dtype="<u8").reshape(-1, rank)
        if coords.size and int(coords.max()) > np.iinfo(np.int64).max:
            raise SelectionError("point coordinate out of range")
        coords = coords.astype(np.int64)
    else:
        try:
            coords = np.asarray(body, dtype=np.int64)
        except (ValueError, TypeError, OverflowError):
            raise SelectionError("point list must contain integers") from None
        if coords.ndim == 1 and rank == 1:
            coords = coords.reshape(-1, 1)
        if coords.ndim != 2 or coords.shape[1] != rank:
            raise SelectionError(f"points must be a list of {rank}-element coordinates")
    if coords.shape[0] == 0:
        raise SelectionError("empty point selection")
    if (coords < 0).any() or (coords >= np.asarray(shape, dtype=np.int64)).any():
        raise SelectionError(f"point out of range for shape {list(shape)}")
    return Points(coords)


def parse_post_body(body: bytes, content_type: str | None, shape: Sequence[int]) -> Selection | Points:
    """A POST to ``/datasets/{id}/value``: binary points, or JSON ``{"select": ...}`` /
    ``{"points": [...]}``."""
    if content_type and "application/octet-stream" in content_type:
        return parse_points(body, shape)
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SelectionError("POST body is neither points (octet-stream) nor JSON") from None
    if not isinstance(doc, dict):
        raise SelectionError("POST JSON body must be an object")
    if "points" in doc:
        return parse_points(doc["points"], shape)
    select = doc.get("select")
    if select is not None and not isinstance(select, str):
        raise SelectionError("'select' must be a string")
    return parse_select(select, shape)


# Output caps of one value request (HSDS answers 413 for too large requests too).
MAX_ELEMENTS = int(os.environ.get("DRANSPOSE_HDFREST_MAX_ELEMENTS", 1 << 27))
MAX_BYTES = int(os.environ.get("DRANSPOSE_HDFREST_MAX_BYTES", 1 << 28))
JSON_BYTES_PER_ELEMENT = 24  # what a JSON-encoded number costs, roughly


def check_size(sel: Selection | Points, itemsize: int, binary: bool,
               max_elements: int | None = None, max_bytes: int | None = None) -> int:
    """Raise SelectionError (413) when ``sel`` selects more than the caps allow; returns the
    number of elements. ``itemsize`` is the wire element size; JSON output is costed at
    :data:`JSON_BYTES_PER_ELEMENT` per element."""
    max_elements = MAX_ELEMENTS if max_elements is None else max_elements
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    elements = math.prod(sel.shape)
    size = elements * (itemsize if binary else max(itemsize, JSON_BYTES_PER_ELEMENT))
    if elements > max_elements or size > max_bytes:
        raise SelectionError(
            f"selection of {elements} elements (~{size} bytes) exceeds the limit of {max_elements} elements "
            f"or {max_bytes} bytes per request; read it in parts", status=413)
    return elements


def apply(arr: np.ndarray, sel: Selection | Points) -> np.ndarray:
    """Return a private copy of the selected part of ``arr`` (only that part is copied)."""
    if isinstance(sel, Points):
        return arr[tuple(sel.coords.T)]
    if arr.ndim == 0:
        return np.array(arr, copy=True)
    view = arr[tuple(d if isinstance(d, slice) else slice(None) for d in sel.dims)]
    copied = False
    for axis, d in enumerate(sel.dims):
        if not isinstance(d, slice):
            view = np.take(view, d, axis=axis)
            copied = True
    return view if copied else np.array(view, copy=True)


def cut_list(
    items: Sequence[Any], sel: Selection | Points
) -> tuple[Sequence[Any], Selection | Points]:
    """Cut the first dimension of a list before it is converted to an array, so only the
    selected rows are copied. Returns the cut list and the selection rebased onto it."""
    if not isinstance(sel, Selection) or not sel.dims:
        return items, sel
    d = sel.dims[0]
    if isinstance(d, slice):
        lo, hi = d.start, d.stop
        first: DimSel = slice(0, hi - lo, d.step)
    else:
        lo, hi = min(d), max(d) + 1
        first = tuple(i - lo for i in d)
    return items[lo:hi], Selection((first, *sel.dims[1:]))
