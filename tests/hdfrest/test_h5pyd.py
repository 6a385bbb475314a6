"""Real h5pyd 1.0 against the server: type matrix, selections, visit, attributes, refusals."""

from __future__ import annotations

from typing import Any, Iterator

import h5pyd
import numpy as np
import pytest
from tests.hdfrest.matrix import CASES, UNSUPPORTED, assert_fixed_size_value, expected_value, norm_strings

SELECTIONS_3D = [
    np.s_[...],
    np.s_[1],
    np.s_[1, 2],
    np.s_[1, 2, 3],
    np.s_[:, 1:3],
    np.s_[:, :, ::2],
    np.s_[0:2, 0:3:2, 1:4],
    np.s_[1, :, 3],
    np.s_[:, [0, 2], :],
    np.s_[:, :, [1, 3]],
    np.s_[0, [0, 2], 1:3],
]


@pytest.fixture(scope="module")
def f(live_module: Any) -> Iterator[Any]:
    with h5pyd.File(live_module.url + "/", "r") as fh:
        yield fh


@pytest.mark.parametrize("name", list(CASES))
def test_type_matrix(f: Any, name: str) -> None:
    ds = f["data"][name]
    _, exp_dtype, _ = CASES[name]
    exp = expected_value(name)
    got = ds[()]
    if exp_dtype == "vlen":
        assert ds.dtype.kind == "O"
        assert norm_strings(got) == exp
        return
    assert ds.dtype == exp_dtype
    assert ds.shape == np.shape(exp)
    assert_fixed_size_value(got, exp, exp_dtype)


@pytest.mark.parametrize("sel", SELECTIONS_3D, ids=[str(s) for s in SELECTIONS_3D])
def test_selection_grammar(f: Any, sel: Any) -> None:
    ref = CASES["f64_3d"][0]
    np.testing.assert_array_equal(f["data/f64_3d"][sel], ref[sel])


def _posts(live: Any, start: int) -> list[str]:
    return [r[3] for r in live.recorder.requests[start:] if r[0] == "POST"]


def test_point_selection_is_binary_post(f: Any, live_module: Any) -> None:
    ref = CASES["f32"][0]
    n = len(live_module.recorder.requests)
    assert f["data/f32"][[0, 2], 1].tolist() == ref[[0, 2], 1].tolist()
    assert _posts(live_module, n) == ["application/octet-stream"]
    n = len(live_module.recorder.requests)
    u16 = CASES["u16"][0]
    np.testing.assert_array_equal(f["data/u16"][[1, 5, 7]], u16[[1, 5, 7]])
    assert _posts(live_module, n) == ["application/octet-stream"]


def test_long_selection_is_json_post(f: Any, live_module: Any) -> None:
    ref = CASES["wide"][0]
    idx = list(range(0, 400, 7))
    n = len(live_module.recorder.requests)
    np.testing.assert_array_equal(f["data/wide"][:, idx], ref[:, idx])
    posts = _posts(live_module, n)  # h5pyd 1.0 sends the JSON body without a Content-Type
    assert len(posts) == 1 and "octet-stream" not in posts[0]


def test_root_and_keys_in_order(f: Any) -> None:
    assert list(f.keys()) == ["entry", "data", "f32_attrs_holder", "zzz_last"]
    assert list(f["data"].keys()) == list(CASES)
    for name in UNSUPPORTED:
        assert name not in f["data"]


def test_visit_reaches_everything(f: Any) -> None:
    seen: list[str] = []

    def visitor(name: str) -> None:
        seen.append(name)

    f.visit(visitor)
    expected = {"entry", "entry/plot", "entry/plot/y", "entry/plot/x", "data",
                "f32_attrs_holder", "zzz_last"} | {f"data/{n}" for n in CASES}
    assert set(seen) == expected


def test_attributes(f: Any) -> None:
    assert f.attrs["NX_class"] in ("NXroot", b"NXroot")
    data_attrs = f["data"].attrs
    assert list(data_attrs.keys()) == ["NX_class", "n", "arr", "names", "flag"]
    assert data_attrs["n"] == 3
    np.testing.assert_array_equal(data_attrs["arr"], np.arange(3.0))
    assert norm_strings(data_attrs["names"]) == ["a", "b"]
    assert bool(data_attrs["flag"]) is True
    assert norm_strings(f["entry/plot/y"].attrs["long_name"]) == "counts"
    assert norm_strings(f["entry"].attrs["NX_class"]) == "NXentry"


@pytest.mark.parametrize("mode", ["w", "a", "r+", "x"])
def test_write_modes_refused(live_module: Any, mode: str) -> None:
    with pytest.raises((IOError, OSError, ValueError)):
        with h5pyd.File(live_module.url + "/", mode) as fh:
            fh.create_group("new")
            fh.flush()
    assert "new" not in live_module.source.publish
