"""The type matrix served in the tests: value in ``publish`` -> what a client must read."""

from __future__ import annotations

from typing import Any

import numpy as np

CMP_DT = np.dtype([("x", "<f8"), ("name", "U4"), ("k", ">i2"), ("raw", "S3")])
CMP_WIRE = np.dtype([("x", "<f8"), ("name", "S16"), ("k", ">i2"), ("raw", "S3")])
PADDED_DT = np.dtype({"names": ["a", "b"], "formats": ["<u1", "<f4"], "offsets": [0, 8],
                      "itemsize": 16})

#: name -> (value in publish, expected dtype or "vlen", expected value)
CASES: dict[str, tuple[Any, Any, Any]] = {
    "int": (7, np.dtype("<i8"), np.int64(7)),
    "bigint": (2**63 + 5, np.dtype("<u8"), np.uint64(2**63 + 5)),
    "float": (2.5, np.dtype("<f8"), np.float64(2.5)),
    "npscalar": (np.float32(1.25), np.dtype("<f4"), np.float32(1.25)),
    "bool": (True, np.dtype(bool), np.bool_(True)),
    "str": ("héllo", "vlen", "héllo"),
    "f32": (np.arange(12, dtype="<f4").reshape(3, 4), np.dtype("<f4"), None),
    "f64_3d": (np.arange(24.0).reshape(2, 3, 4), np.dtype("<f8"), None),
    "wide": (np.arange(3 * 400, dtype="<f4").reshape(3, 400), np.dtype("<f4"), None),
    "u16": (np.arange(10, dtype="<u2"), np.dtype("<u2"), None),
    "i8": (np.arange(-3, 3, dtype="i1"), np.dtype("i1"), None),
    "be_i4": (np.arange(6, dtype=">i4"), np.dtype(">i4"), None),
    "be_f8": (np.linspace(0, 1, 5).astype(">f8"), np.dtype(">f8"), None),
    "f16": (np.arange(4, dtype="<f2") / 2, np.dtype("<f2"), None),
    "nan": (np.array([np.nan, np.inf, -np.inf, 1.0]), np.dtype("<f8"), None),
    "bools": (np.array([True, False, True]), np.dtype(bool), None),
    "ustrs": (np.array(["x", "yé", "zzz"]), "vlen", ["x", "yé", "zzz"]),
    "strlist": (["a", "bcd"], "vlen", ["a", "bcd"]),
    "fixs": (np.array([b"ab", b"c"]), np.dtype("S2"), None),
    "empty": (np.zeros((0, 3)), np.dtype("<f8"), None),
    "numlist": ([1.0, 2.0, 3.5], np.dtype("<f8"), np.array([1.0, 2.0, 3.5])),
    "cmp": (np.array([(1.0, "a", 3, b"r1"), (2.0, "bbé", -4, b"r22")], CMP_DT), CMP_WIRE,
            np.array([(1.0, b"a", 3, b"r1"), (2.0, "bbé".encode(), -4, b"r22")], CMP_WIRE)),
    "padded": (np.array([(1, 2.5), (3, 4.5)], PADDED_DT), np.dtype([("a", "u1"), ("b", "<f4")]),
               np.array([(1, 2.5), (3, 4.5)], [("a", "u1"), ("b", "<f4")])),
}

#: values that must be left out of the links
UNSUPPORTED: dict[str, Any] = {
    "none": None,
    "obj": object(),
    "complex": np.arange(3) * 1j,
    "mixed": [1, "a"],
    "dt64": np.array(["2020-01-01"], dtype="datetime64[D]"),
    "has/slash": 1,
}


def expected_value(name: str) -> Any:
    value, _, exp = CASES[name]
    return value if exp is None else exp


def make_publish() -> dict[str, Any]:
    """A fresh publish dict covering the type matrix, attributes and left-out values."""
    data: dict[str, Any] = {name: case[0] for name, case in CASES.items()}
    data.update(UNSUPPORTED)
    return {
        "_attrs": {"NX_class": "NXroot", "default": "entry"},
        "entry": {
            "_attrs": {"NX_class": "NXentry", "default": "plot"},
            "plot": {
                "y": np.arange(5.0) ** 2,
                "x": np.arange(5.0),
                "y_attrs": {"long_name": "counts"},
            },
            "plot_attrs": {"NX_class": "NXdata", "signal": "y", "axes": ["x"]},
        },
        "data": data,
        "data_attrs": {"NX_class": "NXcollection", "n": 3, "arr": np.arange(3.0),
                       "names": ["a", "b"], "flag": True, "skip": None},
        "f32_attrs_holder": 1,
        "zzz_last": 0,
    }


def norm_strings(value: Any) -> Any:
    """Decode bytes to str (vlen strings read as bytes by h5pyd 1.0, as str by 0.18)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return [norm_strings(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [norm_strings(v) for v in value]
    return value


def assert_fixed_size_value(got: Any, exp: Any, exp_dtype: Any) -> None:
    """``got`` (as a client read it) is ``exp`` with dtype ``exp_dtype``: floats by value (NaN
    equal to NaN), everything else byte for byte."""
    got = np.asarray(got)
    assert got.dtype == exp_dtype
    if got.dtype.kind == "f":
        np.testing.assert_array_equal(got, np.asarray(exp))
    else:
        assert got.tobytes() == np.asarray(exp, dtype=exp_dtype).tobytes()
