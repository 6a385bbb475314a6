"""Real h5pyd 0.18.0 (the version existing analyses' tests pin), in its own venv, against the
server: type matrix, selection grammar, visit, attributes, write refusal, refresh()."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.hdfrest.matrix import CASES, UNSUPPORTED, assert_fixed_size_value, expected_value

CLIENT = Path(__file__).with_name("client018.py")

SELECTIONS = {
    "all": ("data/f64_3d", None),
    "int0": ("data/f64_3d", [1]),
    "int_int": ("data/f64_3d", [1, 2]),
    "slices": ("data/f64_3d", [[0, 2, 1], [0, 3, 2], [1, 4, 1]]),
    "step": ("data/f64_3d", [[0, 2, 1], [0, 3, 1], [0, 4, 2]]),
    "mixed": ("data/f64_3d", [1, [0, 3, 1], 3]),
    "fancy": ("data/f64_3d", [[0, 2, 1], {"idx": [0, 2]}, [0, 4, 1]]),
    "fancy_last": ("data/f64_3d", [[0, 2, 1], [0, 3, 1], {"idx": [1, 3]}]),
    "int_fancy": ("data/f64_3d", [0, {"idx": [0, 2]}, [1, 3, 1]]),
    "long_fancy": ("data/wide", [[0, 3, 1], {"idx": list(range(0, 400, 7))}]),
    "points": ("data/u16", [{"idx": [1, 5, 7]}]),
}


def _decode(enc: dict[str, Any]) -> Any:
    if "str" in enc:
        return enc["str"]
    if "strs" in enc:
        return enc["strs"]
    return np.load(io.BytesIO(base64.b64decode(enc["npy"])), allow_pickle=False)


def _np_sel(spec: Any) -> Any:
    if spec is None:
        return ()
    return tuple(i if isinstance(i, int) else (i["idx"] if isinstance(i, dict) else slice(*i))
                 for i in spec)


def run_client(python: Path, url: str, plan: dict[str, Any], timeout: float = 120) -> dict:
    done = subprocess.run([str(python), str(CLIENT), url], input=json.dumps(plan) + "\n",
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["results"]


@pytest.fixture(scope="module")
def results(h5pyd018_python: Path, live_module: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {"tree": {"op": "tree"}}
    for name in CASES:
        plan[f"case:{name}"] = {"op": "read", "path": f"data/{name}"}
    for key, (path, sel) in SELECTIONS.items():
        plan[f"sel:{key}"] = {"op": "read", "path": path, "sel": sel}
    for mode in ("w", "a", "r+"):
        plan[f"mode:{mode}"] = {"op": "mode", "mode": mode}
    return run_client(h5pyd018_python, live_module.url, plan)


@pytest.mark.parametrize("name", list(CASES))
def test_type_matrix_018(results: dict[str, Any], name: str) -> None:
    res = results[f"case:{name}"]
    assert "error" not in res, res
    _, exp_dtype, _ = CASES[name]
    exp = expected_value(name)
    got = _decode(res["value"])
    if exp_dtype == "vlen":
        assert got == exp
        return
    assert list(res["shape"]) == list(np.shape(exp))
    assert_fixed_size_value(got, exp, exp_dtype)


@pytest.mark.parametrize("key", list(SELECTIONS))
def test_selection_grammar_018(results: dict[str, Any], key: str) -> None:
    res = results[f"sel:{key}"]
    assert "error" not in res, res
    path, sel = SELECTIONS[key]
    ref = CASES[path.split("/")[1]][0]
    np.testing.assert_array_equal(_decode(res["value"]), ref[_np_sel(sel)])


def test_tree_visit_and_attrs_018(results: dict[str, Any]) -> None:
    res = results["tree"]
    assert "error" not in res, res
    expected = {"entry", "entry/plot", "entry/plot/y", "entry/plot/x", "data",
                "f32_attrs_holder", "zzz_last"} | {f"data/{n}" for n in CASES}
    assert set(res["visit"]) == expected
    assert set(res["data"]) == set(CASES) and not set(UNSUPPORTED) & set(res["data"])
    attrs = {k: _decode(v) for k, v in res["data_attrs"].items()}
    assert attrs["NX_class"] == "NXcollection"
    assert int(attrs["n"]) == 3
    assert attrs["names"] == ["a", "b"]
    assert "skip" not in attrs


@pytest.mark.parametrize("mode", ["w", "a", "r+"])
def test_write_modes_refused_018(results: dict[str, Any], live_module: Any, mode: str) -> None:
    assert results[f"mode:{mode}"]["refused"] is True, results[f"mode:{mode}"]
    assert "written_by_018" not in live_module.source.publish
