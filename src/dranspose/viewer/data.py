"""What the live viewer shows of a ``publish`` dict: the tree and plot-ready, decimated values.

Reads the same tree the HDF REST API serves (:mod:`dranspose.hdfrest.tree`, same inclusion
rules, same attributes); values are copied with :func:`dranspose.hdfrest.values.read`, only
the selected (possibly strided) part, under the source's lock. Decimation and encoding happen
after the lock is released. Every payload carries an ``etag`` (a hash of what would be sent)
so a client polling with the etag it holds gets only the datasets that changed.

Bounds: at most ``MAX_NODES`` tree nodes, ``MAX_POINTS`` points per 1D curve and
``MAX_SIDE`` pixels per image side are sent, whatever the size of the published value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dranspose.hdfrest.encoding import jsonable
from dranspose.hdfrest.errors import NotFound
from dranspose.hdfrest.h5types import DatasetView
from dranspose.hdfrest.selection import Selection
from dranspose.hdfrest.tree import Node, attributes, child, children, root_node, walk
from dranspose.hdfrest.values import read

MAX_NODES = 2000  # tree nodes listed
MAX_POINTS = 20_000  # points of a 1D curve
MAX_SIDE = 512  # pixels per image side
FULL_COPY_LIMIT = 4_000_000  # images up to this many pixels are block-averaged, larger ones strided
MAX_TEXT = 2000  # elements of a non-numeric value shown as text
MAX_ATTR_TEXT = 200  # characters of an attribute value in the tree


@dataclass(frozen=True)
class Copied:
    """A private copy of (part of) a dataset, taken under the lock."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray
    step: tuple[int, ...]  # stride used per dimension of ``data`` (1 = every element)
    frame: int | None  # the leading index shown, for rank >= 3


def split_path(path: str) -> tuple[str, ...]:
    """``"/a/b"`` -> ``("a", "b")``; ``"/"`` -> ``()``."""
    return tuple(p for p in path.split("/") if p)


def lookup(publish: Any, path: str) -> Node:
    """The node at ``path`` (``/``-separated) of the served tree, or :class:`NotFound`."""
    node = root_node(publish)
    for name in split_path(path):
        if node.kind != "g":
            raise NotFound(f"{path}: {name!r} is below a dataset")
        node = child(node, name)
    return node


def _attr_text(view: DatasetView) -> Any:
    """A small attribute's value as JSON (lists kept), a large one as its shape."""
    if view.shape != () and math.prod(view.shape) > 64:
        return f"<{'x'.join(map(str, view.shape))} values>"
    value = jsonable(read(view))
    text = json.dumps(value, allow_nan=True, default=str)
    if len(text) > MAX_ATTR_TEXT:
        return text[:MAX_ATTR_TEXT] + "…"
    return value


def _attrs(node: Node) -> dict[str, Any]:
    return {name: _attr_text(view) for name, view in attributes(node)}


def _numeric(view: DatasetView) -> bool:
    dt = view.wire_dtype
    return not view.vlen and dt.names is None and dt.subdtype is None and dt.kind in "biuf"


def _axis_names(axes: Any) -> list[str]:
    """NeXus ``axes``: a list of names, or one string (``"x"``, ``"y:x"``, ``"y,x"``)."""
    if isinstance(axes, list):
        return [str(a) for a in axes]
    if isinstance(axes, str):
        return [a.strip(" []'\"") for a in axes.replace(":", ",").split(",") if a.strip(" []'\"")]
    return []


def _nxdata(node: Node, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """``signal``/``axes`` of an NXdata group as paths of its datasets (None if not one).
    An axis that is ``.`` or not a dataset of the group is None (plotted against the index)."""
    signal = attrs.get("signal")
    if not isinstance(signal, str):
        return None
    base = "/".join(("", *node.path))
    names = {n.name for n in children(node) if n.kind == "d"}
    if signal not in names:
        return None
    axes = [f"{base}/{a}" if a in names else None for a in _axis_names(attrs.get("axes"))]
    return {"signal": f"{base}/{signal}", "axes": axes}


def _describe(node: Node) -> dict[str, Any]:
    attrs = _attrs(node)
    out: dict[str, Any] = {"name": node.name or "/", "path": "/" + "/".join(node.path), "attrs": attrs}
    if node.kind == "g":
        out.update(kind="group", children=[])
        nx = _nxdata(node, attrs)
        if nx is not None:
            out["nxdata"] = nx
    else:
        view = node.view
        assert view is not None
        out.update(kind="dataset", shape=list(view.shape), dtype="str" if view.vlen else str(view.wire_dtype),
                   numeric=_numeric(view))
    return out


def tree(publish: Any) -> dict[str, Any]:
    """The served tree as nested dicts, from HDF REST's own walk (call under the lock; copies
    only small attributes). At most ``MAX_NODES`` nodes: a group cut short says ``truncated``."""
    root = _describe(root_node(publish))
    groups: dict[tuple[str, ...], dict[str, Any]] = {(): root}
    for count, node in enumerate(walk(publish)):
        parent = groups.get(node.path[:-1])
        if parent is None:
            continue  # below a group left out by the cap
        if count >= MAX_NODES:
            parent["truncated"] = True
            break
        doc = _describe(node)
        parent["children"].append(doc)
        if node.kind == "g":
            groups[node.path] = doc
    return root


def _strided(shape: tuple[int, ...], steps: tuple[int, ...], lead: tuple[int, ...]) -> Selection:
    dims: list[Any] = [(i,) for i in lead]
    dims += [slice(0, n, s) for n, s in zip(shape[len(lead):], steps)]
    return Selection(tuple(dims))


def copy_for_plot(publish: Any, path: str, frame: int | None = None) -> Copied:
    """Copy what the plot of ``path`` needs (call under the lock). Numeric 1D: strided to at
    most ``4 * MAX_POINTS``; 2D (or the ``frame``-th, by default last, 2D slice of higher ranks):
    whole when small, else strided to at most ``2 * MAX_SIDE`` per side. Non-numeric values:
    the first ``MAX_TEXT`` rows (16 per further dimension)."""
    node = lookup(publish, path)
    if node.kind != "d":
        raise NotFound(f"{path} is a group")
    view = node.view
    assert view is not None
    shape = view.shape
    dtype = "str" if view.vlen else str(view.wire_dtype)
    if not _numeric(view) or len(shape) == 0:
        steps: tuple[int, ...] = (1,) * len(shape)
        if len(shape) == 0:
            data = read(view)
        else:  # text: the first rows only
            data = read(view, Selection((slice(0, min(shape[0], MAX_TEXT), 1), *(slice(0, min(n, 16), 1) for n in shape[1:]))))
        return Copied(path, shape, dtype, data, steps, None)
    if len(shape) == 1:
        step = max(1, math.ceil(shape[0] / (4 * MAX_POINTS)))
        return Copied(path, shape, dtype, read(view, _strided(shape, (step,), ())), (step,), None)
    lead_n = len(shape) - 2
    if lead_n and 0 in shape[:lead_n]:
        return Copied(path, shape, dtype, np.zeros((0, 0)), (1, 1), None)
    shown = None
    lead: tuple[int, ...] = ()
    if lead_n:
        last = shape[0] - 1
        shown = last if frame is None else min(max(int(frame), 0), last)
        lead = (shown, *(n - 1 for n in shape[1:lead_n]))
    h, w = shape[-2:]
    if h * w <= FULL_COPY_LIMIT:
        steps = (1, 1)
    else:
        steps = (max(1, math.ceil(h / (2 * MAX_SIDE))), max(1, math.ceil(w / (2 * MAX_SIDE))))
    data = read(view, _strided(shape, steps, lead))
    return Copied(path, shape, dtype, data.reshape(data.shape[-2:]), steps, shown)


def _block_reduce(img: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean over ``fy x fx`` blocks, ignoring NaN (edge blocks average what they hold)."""
    h, w = img.shape
    if img.size == 0:
        return np.zeros((-(-h // fy), -(-w // fx)))
    hh, ww = -(-h // fy) * fy, -(-w // fx) * fx
    padded = np.full((hh, ww), np.nan, dtype=np.float64)
    padded[:h, :w] = img
    blocks = padded.reshape(hh // fy, fy, ww // fx, fx)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        out: np.ndarray = np.nanmean(blocks, axis=(1, 3))
    return out


def _b64(arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    return {"dtype": arr.dtype.str.lstrip("<>=|"), "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode()}


def _etag(parts: list[Any]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        view = memoryview(p if not isinstance(p, np.ndarray) or p.size else b"").cast("B")
        h.update(len(view).to_bytes(8, "little"))
        h.update(view)
    return h.hexdigest()


def copy_etag(c: Copied) -> str:
    """The etag of what :func:`plot_payload` would send for ``c``, computed from the copy
    alone (so an unchanged dataset costs a hash, not a decimation and an encoding)."""
    meta = repr((c.shape, c.dtype, c.step, c.frame)).encode()
    if c.data.dtype.kind not in "biuf" or len(c.shape) == 0:
        return _etag([repr(jsonable(c.data)).encode(), meta])
    return _etag([np.ascontiguousarray(c.data), meta])


IMAGE_KEEP = ("u1", "i1", "u2", "i2")  # image dtypes sent as they are (when not averaged)


def plot_payload(c: Copied, known_etag: str | None = None) -> dict[str, Any]:
    """The JSON payload of a copied dataset (outside the lock): kind ``line``, ``image`` or
    ``text``; numeric arrays base64-encoded little-endian (``f8`` for curves; images as
    ``u1``/``i1``/``u2``/``i2`` when shown 1:1, else ``f4``). If ``known_etag`` is the data's
    etag, only ``{"unchanged": true, "etag": ...}``."""
    etag = copy_etag(c)
    if etag == known_etag:
        return {"unchanged": True, "etag": etag}
    meta: dict[str, Any] = {"path": c.path, "shape": list(c.shape), "dtype": c.dtype, "etag": etag}
    if c.data.dtype.kind not in "biuf" or len(c.shape) == 0:
        meta.update(kind="text", value=jsonable(c.data), truncated=c.data.size < math.prod(c.shape or (1,)))
        return meta
    if c.data.ndim == 1:
        y = c.data.astype("<f8")
        step = c.step[0]
        if y.size > MAX_POINTS:  # a further mean over bins keeps the curve's shape
            f = math.ceil(y.size / MAX_POINTS)
            y = _block_reduce(y[None, :], 1, f)[0]
            step *= f
        meta.update(kind="line", step=step, y=_b64(y))
        return meta
    h, w = c.data.shape
    fy = max(1, math.ceil(h / MAX_SIDE))
    fx = max(1, math.ceil(w / MAX_SIDE)) if w else 1
    if fy > 1 or fx > 1:
        out = _block_reduce(c.data.astype(np.float64), fy, fx).astype("<f4")
    elif c.data.dtype.str.lstrip("<>=|") in IMAGE_KEEP:
        out = c.data.astype(c.data.dtype.newbyteorder("<"))
    else:
        out = c.data.astype("<f4")
    if out.dtype.kind == "f":
        finite = out[np.isfinite(out)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    else:
        lo, hi = (float(out.min()), float(out.max())) if out.size else (None, None)
    meta.update(kind="image", frame=c.frame, step=[c.step[0] * fy, c.step[1] * fx], z=_b64(out), min=lo, max=hi)
    return meta


def tree_etag(doc: Mapping[str, Any]) -> str:
    """A hash of the tree document (structure, shapes, attributes)."""
    return _etag([json.dumps(doc, sort_keys=True, default=str).encode()])
