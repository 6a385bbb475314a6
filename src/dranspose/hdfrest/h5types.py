"""Mapping of Python/numpy values in ``publish`` to HDF REST types and shapes.

A value is served as a dataset if :func:`dataset_view` returns a :class:`DatasetView` for it;
values it refuses (None, arbitrary objects, complex numbers, datetimes, ...) are left out of
the links entirely. Rules (see shared/HDFREST.md):

- ``bool``/``np.bool_`` -> ``H5T_ENUM`` over int8 with mapping ``{FALSE: 0, TRUE: 1}``
- ``int`` -> int64 (uint64 if it only fits there), ``float`` -> float64, numpy scalars keep
  their dtype; all scalars have shape ``H5S_SCALAR``
- numeric numpy arrays keep their dtype, byte order included (float16 and big-endian too)
- ``str``, numpy ``U`` arrays, object arrays and lists of ``str`` -> variable-length UTF-8
  strings (served as JSON only)
- numpy ``S`` arrays and ``bytes`` -> fixed-length ASCII strings
- structured dtypes -> ``H5T_COMPOUND``, packed; a ``U<n>`` field becomes a fixed-length
  string of ``4*n`` bytes holding the UTF-8 encoding (labelled ASCII: h5pyd 0.18 refuses
  fixed-length UTF-8)

Nothing here copies array data; :func:`to_wire` is where a (selected, already small) array is
converted to the bytes layout announced in the type.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ViewKind = Literal["array", "list", "scalar"]

BOOL_TYPE: dict[str, Any] = {
    "class": "H5T_ENUM",
    "base": {"class": "H5T_INTEGER", "base": "H5T_STD_I8LE"},
    "mapping": {"FALSE": 0, "TRUE": 1},
}
VLEN_STR_TYPE: dict[str, Any] = {
    "class": "H5T_STRING",
    "charSet": "H5T_CSET_UTF8",
    "length": "H5T_VARIABLE",
    "strPad": "H5T_STR_NULLTERM",
}
VLEN = np.dtype(object)

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


@dataclass(frozen=True)
class DatasetView:
    """How one value of ``publish`` is served. Holds a reference to the value, no copy.

    ``wire_dtype`` is the numpy dtype of the bytes served (``VLEN`` for variable-length
    strings, which are served as JSON only); ``shape`` is ``()`` for scalars.
    """

    obj: Any
    kind: ViewKind
    shape: tuple[int, ...]
    wire_dtype: np.dtype
    type_json: dict[str, Any]

    @property
    def vlen(self) -> bool:
        return self.wire_dtype == VLEN

    @property
    def shape_json(self) -> dict[str, Any]:
        return shape_json(self.shape)


def shape_json(shape: tuple[int, ...]) -> dict[str, Any]:
    """HDF REST shape object for a numpy shape (``()`` -> ``H5S_SCALAR``)."""
    if shape == ():
        return {"class": "H5S_SCALAR"}
    return {"class": "H5S_SIMPLE", "dims": list(shape)}


def _order(dt: np.dtype) -> str:
    bo = dt.byteorder
    if bo == ">" or (bo == "=" and sys.byteorder == "big"):
        return "BE"
    return "LE"


def type_json(dt: np.dtype, in_compound: bool = False) -> dict[str, Any] | None:
    """HDF REST type object for a numpy dtype, or None if it cannot be represented.

    ``U`` at top level is a variable-length string; inside a compound a fixed-length UTF-8
    string of 4 bytes per character.
    """
    if dt.names is not None:
        fields = []
        for name in dt.names:
            sub = type_json(dt.fields[name][0], in_compound=True)  # type: ignore[index]
            if sub is None:
                return None
            fields.append({"name": name, "type": sub})
        if not fields:
            return None
        return {"class": "H5T_COMPOUND", "fields": fields}
    if dt.subdtype is not None:
        base_dt, sub_shape = dt.subdtype
        base = type_json(base_dt, in_compound=True)
        if base is None:
            return None
        return {"class": "H5T_ARRAY", "dims": list(sub_shape), "base": base}
    kind, size = dt.kind, dt.itemsize
    if kind == "b":
        return dict(BOOL_TYPE)
    if kind in "iu" and size in (1, 2, 4, 8):
        sign = "I" if kind == "i" else "U"
        return {"class": "H5T_INTEGER", "base": f"H5T_STD_{sign}{8 * size}{_order(dt)}"}
    if kind == "f" and size in (2, 4, 8):
        return {"class": "H5T_FLOAT", "base": f"H5T_IEEE_F{8 * size}{_order(dt)}"}
    if kind == "S" and size > 0:
        return {
            "class": "H5T_STRING",
            "charSet": "H5T_CSET_ASCII",
            "length": size,
            "strPad": "H5T_STR_NULLPAD",
        }
    if kind == "U" and size > 0:
        if not in_compound:
            return dict(VLEN_STR_TYPE)
        # numpy: 4 bytes per character, the UTF-8 maximum. Labelled ASCII (the bytes are
        # UTF-8): h5pyd 0.18 refuses fixed-length UTF-8 strings.
        return {
            "class": "H5T_STRING",
            "charSet": "H5T_CSET_ASCII",
            "length": size,
            "strPad": "H5T_STR_NULLPAD",
        }
    return None


def wire_dtype(dt: np.dtype, in_compound: bool = False) -> np.dtype | None:
    """The dtype of the bytes served for ``dt``: packed, ``U`` fields as ``S``.

    Returns ``VLEN`` for top-level ``U`` and None if ``dt`` cannot be represented.
    """
    if dt.names is not None:
        fields = []
        for name in dt.names:
            sub = wire_dtype(dt.fields[name][0], in_compound=True)  # type: ignore[index]
            if sub is None:
                return None
            fields.append((name, sub))
        return np.dtype(fields) if fields else None
    if dt.subdtype is not None:
        base_dt, sub_shape = dt.subdtype
        base = wire_dtype(base_dt, in_compound=True)
        return None if base is None else np.dtype((base, sub_shape))
    if type_json(dt, in_compound) is None:
        return None
    if dt.kind == "U":
        return np.dtype(f"S{dt.itemsize}") if in_compound else VLEN
    return dt


def _all_str(items: Any) -> bool:
    return all(isinstance(x, str) for x in items)


def _array_view(obj: Any, arr: np.ndarray, kind: ViewKind) -> DatasetView | None:
    dt = arr.dtype
    if dt.kind == "O":
        if arr.size and not _all_str(arr.flat):
            return None
        if arr.size == 0:
            return None
        return DatasetView(obj, kind, arr.shape, VLEN, dict(VLEN_STR_TYPE))
    tj = type_json(dt)
    wd = wire_dtype(dt)
    if tj is None or wd is None:
        return None
    return DatasetView(obj, kind, arr.shape, wd, tj)


def dataset_view(obj: Any) -> DatasetView | None:
    """Describe how ``obj`` is served, or None if it is left out. O(1) for arrays;
    lists are inspected (call under the publish lock)."""
    if isinstance(obj, np.ndarray):
        return _array_view(obj, obj, "array")
    if isinstance(obj, (bool, np.bool_)):
        return DatasetView(obj, "scalar", (), np.dtype(bool), dict(BOOL_TYPE))
    if isinstance(obj, np.generic):
        return _array_view(obj, np.asarray(obj), "scalar")
    if isinstance(obj, int):
        dt: np.dtype[Any]
        if _INT64_MIN <= obj <= _INT64_MAX:
            dt = np.dtype("<i8")
        elif 0 <= obj <= _UINT64_MAX:
            dt = np.dtype("<u8")
        else:
            return None
        return DatasetView(obj, "scalar", (), dt, type_json(dt))  # type: ignore[arg-type]
    if isinstance(obj, float):
        dt = np.dtype("<f8")
        return DatasetView(obj, "scalar", (), dt, type_json(dt))  # type: ignore[arg-type]
    if isinstance(obj, str):
        return DatasetView(obj, "scalar", (), VLEN, dict(VLEN_STR_TYPE))
    if isinstance(obj, bytes):
        dt = np.dtype(f"S{max(len(obj), 1)}")
        return DatasetView(obj, "scalar", (), dt, type_json(dt))  # type: ignore[arg-type]
    if isinstance(obj, (list, tuple)):
        if obj and _all_str(obj):
            return DatasetView(obj, "list", (len(obj),), VLEN, dict(VLEN_STR_TYPE))
        try:
            arr = np.asarray(obj)
        except (ValueError, TypeError):
            return None
        if arr.dtype.kind == "O" or (arr.dtype.kind in "US" and arr.size):
            return None  # ragged/objects, or numbers numpy turned into strings
        return _array_view(obj, arr, "list")
    return None


def to_wire(arr: np.ndarray, wd: np.dtype) -> np.ndarray:
    """Return ``arr`` (already a private copy of the selection) in the dtype ``wd`` announced
    by the type, C-contiguous. Packs compounds and UTF-8-encodes ``U`` fields."""
    if wd == VLEN:
        return arr
    if wd.subdtype is not None:  # a subarray field: arr already carries the extra dims
        return to_wire(arr, wd.subdtype[0])
    if arr.dtype == wd:
        return arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d
    if wd.names is not None:
        out = np.empty(arr.shape, wd)
        for name in wd.names:
            out[name] = to_wire(arr[name], wd.fields[name][0])  # type: ignore[index]
        return out
    if arr.dtype.kind == "U" and wd.kind == "S":
        return np.char.encode(arr, "utf-8").astype(wd)
    return arr.astype(wd, order="C")
