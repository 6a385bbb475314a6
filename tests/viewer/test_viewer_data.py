"""The viewer's reading of ``publish``: the same tree as HDF REST, bounded decimation, etags
that change exactly when the shown data changes, NXdata signal/axes, hostile paths refused."""

from __future__ import annotations

import base64
import threading
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dranspose import hdfrest, viewer
from dranspose.hdfrest.errors import NotFound
from dranspose.viewer import data


def decode(b: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b["b64"]), dtype="<" + b["dtype"]).reshape(b["shape"])


def payload(publish: Any, path: str, frame: int | None = None) -> dict[str, Any]:
    return data.plot_payload(data.copy_for_plot(publish, path, frame))


def test_tree_lists_what_hdf_rest_serves() -> None:
    publish = {
        "a": np.arange(3.0), "a_attrs": {"units": "mm"}, "g": {"x": 1, "_attrs": {"NX_class": "NXentry"}},
        "none": None, "obj": object(), "bad/name": 1, "s": "text", "_attrs": {"title": "t"},
    }
    doc = data.tree(publish)
    assert [c["name"] for c in doc["children"]] == ["a", "g", "s"]
    assert doc["attrs"] == {"title": "t"}
    a = doc["children"][0]
    assert a == {"name": "a", "path": "/a", "attrs": {"units": "mm"}, "kind": "dataset", "shape": [3], "dtype": "float64", "numeric": True}
    assert doc["children"][1]["children"][0]["path"] == "/g/x"
    # the same links as HDF REST
    client = TestClient(hdfrest.create_app(publish))
    root = client.get("/").json()["root"]
    links = [link["title"] for link in client.get(f"/groups/{root}/links").json()["links"]]
    assert links == ["a", "g", "s"]


def test_tree_is_bounded() -> None:
    publish = {f"k{i}": {f"v{j}": j for j in range(30)} for i in range(200)}
    doc = data.tree(publish)
    count = 0

    def walk(n: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        for c in n.get("children", []):
            walk(c)

    walk(doc)
    assert count <= data.MAX_NODES + 1
    assert any(c.get("truncated") for c in doc["children"])


def test_curves_are_decimated_to_a_bound_and_keep_their_x_scale() -> None:
    n = 1_000_003
    p = payload({"y": np.arange(n, dtype=np.float32)}, "/y")
    y = decode(p["y"])
    assert p["kind"] == "line" and p["shape"] == [n]
    assert y.size <= data.MAX_POINTS and y.size * p["step"] >= n
    # block means of a ramp: the value at index i is about i * step
    assert abs(y[10] - 10 * p["step"]) <= p["step"]
    small = payload({"y": np.array([1, 5, 2], dtype=np.int16)}, "/y")
    assert small["step"] == 1 and decode(small["y"]).tolist() == [1.0, 5.0, 2.0]


@pytest.mark.parametrize("shape", [(4000, 3000), (1500, 1200), (100, 7000)])
def test_images_are_decimated_server_side(shape: tuple[int, int]) -> None:
    img = np.zeros(shape, dtype=np.uint32)
    img[:, : shape[1] // 2] = 10
    p = payload({"img": img}, "/img")
    z = decode(p["z"])
    assert p["kind"] == "image" and p["shape"] == list(shape)
    assert z.shape[0] <= data.MAX_SIDE and z.shape[1] <= data.MAX_SIDE
    assert z.shape[0] * p["step"][0] >= shape[0] and z.shape[1] * p["step"][1] >= shape[1]
    assert z[0, 0] == 10 and z[-1, -1] == 0
    assert p["min"] == 0 and p["max"] == 10


def test_small_integer_images_are_sent_as_they_are() -> None:
    img = (np.arange(12, dtype=">u2") * 1000).reshape(3, 4)  # big-endian too
    p = payload({"img": img}, "/img")
    assert p["z"]["dtype"] == "u2" and decode(p["z"]).tolist() == img.tolist()
    assert payload({"img": img.astype(np.int32)}, "/img")["z"]["dtype"] == "f4"
    known = p["etag"]
    assert data.plot_payload(data.copy_for_plot({"img": img}, "/img"), known) == {"unchanged": True, "etag": known}


def test_stacks_show_one_frame_last_by_default() -> None:
    stack = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5)
    p = payload({"s": stack}, "/s")
    assert p["frame"] == 2 and decode(p["z"]).tolist() == stack[2].tolist()
    assert payload({"s": stack}, "/s", frame=0)["frame"] == 0
    assert payload({"s": stack}, "/s", frame=99)["frame"] == 2
    assert payload({"s": np.zeros((0, 4, 5))}, "/s")["kind"] == "image"


def test_text_values_and_non_finite_numbers() -> None:
    publish = {"s": "hello", "n": float("nan"), "words": ["a", "b"], "rec": np.zeros(2, dtype=[("x", "<i4"), ("y", "<f8")]),
               "many": [f"w{i}" for i in range(5000)]}
    assert payload(publish, "/s")["value"] == "hello"
    assert payload(publish, "/words") ["value"] == ["a", "b"]
    assert payload(publish, "/rec")["value"] == [[0, 0.0], [0, 0.0]]
    many = payload(publish, "/many")
    assert len(many["value"]) == data.MAX_TEXT and many["truncated"] is True
    client = TestClient(app_over(publish))
    body = client.get("/viewer/api/poll", params=[("path", "/n")]).json()  # strict JSON
    assert body["datasets"]["/n"]["value"] == "NaN"


def test_etag_changes_exactly_with_the_data() -> None:
    publish: dict[str, Any] = {"y": np.arange(10.0)}
    first = payload(publish, "/y")["etag"]
    assert payload(publish, "/y")["etag"] == first
    publish["y"][3] = -1  # changed in place
    second = payload(publish, "/y")["etag"]
    assert second != first
    publish["y"] = np.append(publish["y"], 5.0)  # grown
    assert payload(publish, "/y")["etag"] not in (first, second)


def test_nxdata_signal_and_axes() -> None:
    publish = {
        "curve": {"_attrs": {"NX_class": "NXdata", "signal": "y", "axes": ["x"]}, "y": np.arange(4.0), "x": np.arange(4.0) * 0.5},
        "map": {"_attrs": {"NX_class": "NXdata", "signal": "z", "axes": "y:x"}, "z": np.zeros((2, 3)), "y": np.arange(2.0), "x": np.arange(3.0)},
        "partial": {"_attrs": {"signal": "z", "axes": [".", "x"]}, "z": np.zeros((2, 3)), "x": np.arange(3.0)},
        "broken": {"_attrs": {"signal": "missing"}, "z": 1},
    }
    groups = {c["name"]: c for c in data.tree(publish)["children"]}
    assert groups["curve"]["nxdata"] == {"signal": "/curve/y", "axes": ["/curve/x"]}
    assert groups["map"]["nxdata"] == {"signal": "/map/z", "axes": ["/map/y", "/map/x"]}
    assert groups["partial"]["nxdata"] == {"signal": "/partial/z", "axes": [None, "/partial/x"]}
    assert "nxdata" not in groups["broken"]


@pytest.mark.parametrize("path", ["/nope", "/a/deeper", "/../a", "/g", "//a_attrs"])
def test_bad_paths_are_not_found(path: str) -> None:
    publish = {"a": 1, "a_attrs": {"u": 1}, "g": {}}
    if path == "/../a":
        with pytest.raises(NotFound):
            data.copy_for_plot({"a": {}}, "/../b")
        return
    with pytest.raises(NotFound):
        data.copy_for_plot(publish, path)


def app_over(source: Any) -> FastAPI:
    app = FastAPI()
    viewer.mount(app, source)
    return app


class Source:
    """A reducer-like source with a lock that records whether reads held it."""

    def __init__(self) -> None:
        self.publish: dict[str, Any] = {"y": np.arange(5.0), "img": np.ones((8, 8))}
        self.publish_rlock = threading.RLock()
        self.held_during_read = False


def test_poll_returns_only_changed_datasets_and_holds_the_lock() -> None:
    src = Source()
    client = TestClient(app_over(src))
    first = client.get("/viewer/api/poll", params=[("path", "/y"), ("path", "/img")]).json()
    assert first["tree"]["children"][0]["name"] == "y"
    assert {k: v["kind"] for k, v in first["datasets"].items()} == {"/y": "line", "/img": "image"}
    query = [("tree", first["tree_etag"]), ("path", "/y"), ("etag", first["datasets"]["/y"]["etag"]),
             ("path", "/img"), ("etag", first["datasets"]["/img"]["etag"])]
    same = client.get("/viewer/api/poll", params=query).json()
    assert same["tree"] is None
    assert same["datasets"]["/y"] == {"unchanged": True, "etag": first["datasets"]["/y"]["etag"]}
    assert same["datasets"]["/img"]["unchanged"] is True
    with src.publish_rlock:
        src.publish["y"] = np.arange(6.0)
    grown = client.get("/viewer/api/poll", params=query).json()
    assert grown["tree"] is not None  # the shape changed
    assert decode(grown["datasets"]["/y"]["y"]).tolist() == [0, 1, 2, 3, 4, 5]
    assert grown["datasets"]["/img"]["unchanged"] is True
    # a poll waits for the reducer's lock: no torn reads
    done = threading.Event()
    src.publish_rlock.acquire()
    t = threading.Thread(target=lambda: (client.get("/viewer/api/poll", params=[("path", "/y")]), done.set()))
    t.start()
    assert not done.wait(0.3)
    src.publish_rlock.release()
    assert done.wait(10)
    t.join()


def test_page_and_static_files_are_served_without_a_cdn() -> None:
    client = TestClient(app_over({}))
    page = client.get("/viewer")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # everything from this server
    assert 'src="viewer/static/plotly.min.js"' in page.text  # relative: works behind a path prefix
    slash = client.get("/viewer/?select=/a", follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"] == "../viewer?select=/a"
    assert client.get("/viewer/?select=/a").url.path == "/viewer"
    js = client.get("/viewer/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    zipped = client.get("/viewer/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    own = client.get("/viewer/static/viewer.js").text
    assert "innerHTML" not in own and "textContent" in own
    assert client.get("/viewer/static/..%2Fdata.py").status_code == 404
    assert client.get("/viewer/static/other.js").status_code == 404
    body = client.get("/viewer/api/poll", params=[("path", "/nothing")]).json()
    assert "error" in body["datasets"]["/nothing"]
    many = client.get("/viewer/api/poll", params=[("path", f"/p{i}") for i in range(100)]).json()
    assert len(many["datasets"]) == 16
