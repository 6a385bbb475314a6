"""Pure parts: ids, selection parsing, type mapping; mount() next to other routes."""

from __future__ import annotations

import h5pyd
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from tests.hdfrest.server_util import FiveXXRecorder, serve

from dranspose.hdfrest import create_app, mount
from dranspose.hdfrest.errors import SelectionError
from dranspose.hdfrest.h5types import dataset_view, type_json
from dranspose.hdfrest.ids import ROOT_ID, is_valid_id, object_id
from dranspose.hdfrest.selection import apply, parse_points, parse_select


def test_ids_stable_and_shaped() -> None:
    a = object_id("d", ("x", "y"))
    assert a == object_id("d", ("x", "y")) and is_valid_id(a) and len(a) == 38
    assert a != object_id("g", ("x", "y")) != object_id("d", ("x/y",))
    assert ROOT_ID.startswith("g-") and is_valid_id(ROOT_ID)
    assert not is_valid_id("g-short") and not is_valid_id("x-" + "a" * 36)


@pytest.mark.parametrize("text,expected", [
    ("[0,:]", np.s_[0:1, :]), ("[1:3,::2]", np.s_[1:3, ::2]), ("[,1]", np.s_[:, 1:2]),
    ("[:,[0,2]]", np.s_[:, [0, 2]]), ("[1:2:1,3]", np.s_[1:2, 3:4]), (None, np.s_[:, :]),
    ("[]", np.s_[:, :]),
])
def test_select_grammar(text: str, expected: object) -> None:
    a = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(apply(a, parse_select(text, a.shape)), a[expected])


@pytest.mark.parametrize("text", ["[0:4,:]", "[3,:]", "[0]", "[0,0,0]", "[x,:]", "0,:",
                                  "[1:0,:]", "[::0,:]", "[-1,:]", "[[],:]", "[[0,:]"])
def test_select_errors(text: str) -> None:
    with pytest.raises(SelectionError):
        parse_select(text, (3, 4))


def test_points() -> None:
    a = np.arange(12).reshape(3, 4)
    pts = parse_points(np.array([[0, 1], [2, 3]], "<u8").tobytes(), a.shape)
    assert apply(a, pts).tolist() == [1, 11]
    for bad in (b"\0" * 12, np.array([[3, 0]], "<u8").tobytes(), b""):
        with pytest.raises(SelectionError):
            parse_points(bad, a.shape)


def test_types() -> None:
    assert type_json(np.dtype(">f2")) == {"class": "H5T_FLOAT", "base": "H5T_IEEE_F16BE"}
    assert type_json(np.dtype("<u8"))["base"] == "H5T_STD_U64LE"
    assert type_json(np.dtype("c16")) is None
    assert type_json(np.dtype(("<i4", (2, 3))))["class"] == "H5T_ARRAY"
    for value in (None, object(), [1, "a"], [[1], [2, 3]], {1, 2}, np.array([None]), 2**70):
        assert dataset_view(value) is None
    assert dataset_view(["a", "b"]).vlen  # type: ignore[union-attr]


@pytest.mark.e2e  # a live HTTP server
def test_mount_with_prefix_next_to_api_routes() -> None:
    app = FastAPI()

    @app.get("/api/v1/status")
    def status() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/api/v1/stop")
    def stop() -> dict[str, str]:
        return {"stopped": "yes"}

    mount(app, {"x": np.arange(4)}, prefix="/h5")
    rec = FiveXXRecorder(app)
    with serve(rec) as url:
        assert httpx.get(url + "/api/v1/status").json() == {"ok": "yes"}
        assert httpx.post(url + "/api/v1/stop").json() == {"stopped": "yes"}
        with h5pyd.File("/", "r", endpoint=url + "/h5") as f:
            np.testing.assert_array_equal(f["x"][()], np.arange(4))
    assert rec.failures == []


@pytest.mark.e2e  # a live HTTP server
def test_plain_dict_and_publish_replaced() -> None:
    class Reducer:
        publish: object = None

    red = Reducer()
    rec = FiveXXRecorder(create_app(red))
    with serve(rec) as url:
        with h5pyd.File(url + "/", "r") as f:  # publish not set yet: an empty root
            assert list(f.keys()) == []
        red.publish = {"a": 1.5}
        with h5pyd.File(url + "/", "r") as f:
            assert f["a"][()] == 1.5
    assert rec.failures == []


def test_compress_only_when_it_pays() -> None:
    import gzip

    from dranspose.hdfrest.encoding import maybe_gzip

    zeros = np.zeros(1 << 20, "<f4").tobytes()
    noise = np.random.default_rng(1).random(1 << 18).astype("<f4").tobytes()
    body, headers = maybe_gzip(zeros, "gzip, deflate", "10.1.2.3")
    assert headers == {"Content-Encoding": "gzip"} and gzip.decompress(body) == zeros
    assert len(body) < len(zeros) // 10
    assert maybe_gzip(zeros, "gzip, deflate", "127.0.0.1") == (zeros, {})  # loopback
    assert maybe_gzip(zeros, "identity", "10.1.2.3") == (zeros, {})  # not accepted
    assert maybe_gzip(noise, "gzip", "10.1.2.3") == (noise, {})  # does not shrink
    assert maybe_gzip(zeros[:1000], "gzip", "10.1.2.3") == (zeros[:1000], {})  # small


def test_attrs_conventions() -> None:
    from dranspose.hdfrest import tree

    pub = {
        "_attrs": {"root": 1},
        "g": {"_attrs": {"own": "a", "both": "own"}, "v": 1},
        "g_attrs": {"both": "sibling", "s": 2},
        "d": np.arange(3),
        "d_attrs": {"units": "mm", "nested": {"x": 1}, "none": None},
        "x_attrs": 5,  # not a dict: an ordinary dataset
        "orphan_attrs": {"a": 1},  # a dict ending in _attrs: never a link
        3: "non-str key",
    }
    root = tree.root_node(pub)
    assert [n.name for n in tree.children(root)] == ["g", "d", "x_attrs"]
    assert [n for n, _ in tree.attributes(root)] == ["root"]
    g = tree.child(root, "g")
    assert {n: v.obj for n, v in tree.attributes(g)} == {"own": "a", "both": "sibling", "s": 2}
    assert [n for n, _ in tree.attributes(tree.child(root, "d"))] == ["units"]
    assert [n.path for n in tree.walk(pub)] == [("g",), ("d",), ("x_attrs",), ("g", "v")]
