"""Reading the selected part of a served value as a private numpy array.

Called under the publish lock; returns a copy of only the selected elements, already in the
wire dtype (C-contiguous), so encoding can happen after the lock is released. Variable-length
strings come back as object arrays of ``str``.
"""

from __future__ import annotations

import numpy as np

from dranspose.hdfrest.h5types import DatasetView, to_wire
from dranspose.hdfrest.selection import Points, Selection, apply, cut_list, full


def read(view: DatasetView, sel: Selection | Points | None = None) -> np.ndarray:
    """Private copy of the selection ``sel`` (everything if None) of ``view``."""
    if sel is None:
        sel = full(view.shape)
    obj = view.obj
    if view.kind == "scalar":
        if view.vlen:
            return np.array(str(obj), dtype=object)
        if isinstance(obj, np.generic):
            return to_wire(np.array(obj), view.wire_dtype)
        return np.array(obj, dtype=view.wire_dtype)
    if view.kind == "array":
        part = apply(obj, sel)
        if view.vlen:
            return part.astype(object)
        return to_wire(part, view.wire_dtype)
    # a list: cut the first dimension before converting
    items, sel2 = cut_list(obj, sel)
    dtype = object if view.vlen else view.wire_dtype
    if len(items) == 0:
        arr = np.empty((0, *view.shape[1:]), dtype=dtype)
    elif view.vlen:
        arr = np.empty(len(items), dtype=object)
        arr[:] = [str(x) for x in items]
    else:
        arr = np.asarray(items, dtype=dtype)
    return apply(arr, sel2)
