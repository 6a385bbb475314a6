"""Raw HTTP: the H5Web (HsdsProvider) request sequence, CORS, encodings and the error rule."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import numpy as np
import pytest
from tests.hdfrest.matrix import CASES

from dranspose.hdfrest.ids import ROOT_ID

ORIGIN = {"Origin": "http://h5web.example"}


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(path, params={"domain": "/", **params}, headers=ORIGIN)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["access-control-allow-origin"] == "*"
    return json.loads(r.text)  # accepts the NaN/Infinity tokens


def _h5web_walk(client: httpx.Client) -> dict[str, Any]:
    """Replays HsdsProvider: root, group, attributes (only if attributeCount), links, children."""
    entities: dict[str, Any] = {}
    root = _get(client, "/")["root"]

    def attrs(coll: str, oid: str, count: int) -> dict[str, Any]:
        if count == 0:
            return {}
        names = [a["name"] for a in _get(client, f"/{coll}/{oid}/attributes")["attributes"]]
        return {n: _get(client, f"/{coll}/{oid}/attributes/{n}") for n in names}

    def group(oid: str, path: str) -> None:
        g = _get(client, f"/groups/{oid}")
        entities[path] = {"kind": "group", "attrs": attrs("groups", oid, g["attributeCount"])}
        if g["linkCount"] == 0:
            return
        for link in _get(client, f"/groups/{oid}/links")["links"]:
            assert link["class"] == "H5L_TYPE_HARD"
            child = f"{path.rstrip('/')}/{link['title']}"
            if link["collection"] == "groups":
                group(link["id"], child)
            else:
                d = _get(client, f"/datasets/{link['id']}")
                entities[child] = {"kind": "dataset", "id": link["id"], "doc": d,
                                   "attrs": attrs("datasets", link["id"], d["attributeCount"])}

    group(root, "/")
    return entities


@pytest.fixture(scope="module")
def client(live_module: Any) -> Any:
    with httpx.Client(base_url=live_module.url, timeout=30) as c:
        yield c


def test_h5web_sequence(client: httpx.Client) -> None:
    ents = _h5web_walk(client)
    assert ents["/"]["attrs"]["NX_class"]["value"] == "NXroot"
    assert ents["/entry/plot"]["attrs"]["signal"]["value"] == "y"
    assert ents["/entry/plot"]["attrs"]["axes"]["value"] == ["x"]
    assert set(n for n in ents if n.startswith("/data/")) == {f"/data/{n}" for n in CASES}
    # bool is an enum with a mapping (H5Web needs it)
    btype = ents["/data/bools"]["doc"]["type"]
    assert btype["class"] == "H5T_ENUM" and btype["mapping"] == {"FALSE": 0, "TRUE": 1}
    cmp = ents["/data/cmp"]["doc"]["type"]
    assert cmp["class"] == "H5T_COMPOUND"
    assert [f["name"] for f in cmp["fields"]] == ["x", "name", "k", "raw"]
    assert cmp["fields"][1]["type"]["class"] == "H5T_STRING"
    assert ents["/data/int"]["doc"]["shape"] == {"class": "H5S_SCALAR"}
    assert ents["/data/f16"]["doc"]["type"]["base"] == "H5T_IEEE_F16LE"
    assert ents["/data/be_i4"]["doc"]["type"]["base"] == "H5T_STD_I32BE"
    # H5Web reads values as JSON with a select such as [0,:,:] (dims kept, like HSDS)
    oid = ents["/data/f64_3d"]["id"]
    val = _get(client, f"/datasets/{oid}/value", select="[0,:,:]")["value"]
    assert val == CASES["f64_3d"][0][0:1].tolist()
    nan = _get(client, f"/datasets/{ents['/data/nan']['id']}/value")["value"]
    assert math.isnan(nan[0]) and nan[1:] == [math.inf, -math.inf, 1.0]
    assert _get(client, f"/datasets/{ents['/data/bools']['id']}/value")["value"] == [True, False, True]
    assert _get(client, f"/datasets/{ents['/data/cmp']['id']}/value")["value"] == [
        [1.0, "a", 3, "r1"], [2.0, "bbé", -4, "r22"]]
    assert _get(client, f"/datasets/{ents['/data/str']['id']}/value")["value"] == "héllo"


def test_nan_tokens_in_raw_json(client: httpx.Client) -> None:
    oid = _h5web_ids(client)["nan"]
    text = client.get(f"/datasets/{oid}/value", params={"domain": "/"}).text
    assert "NaN" in text and "-Infinity" in text


def _h5web_ids(client: httpx.Client) -> dict[str, str]:
    g = _get(client, f"/groups/{ROOT_ID}", include_links=1)
    data = _get(client, f"/groups/{g['links']['data']['id']}", include_links=1)
    return {name: link["id"] for name, link in data["links"].items()}


def test_binary_only_when_asked(client: httpx.Client) -> None:
    oid = _h5web_ids(client)["be_i4"]
    r = client.get(f"/datasets/{oid}/value", params={"domain": "/"},
                   headers={"Accept": "application/octet-stream"})
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == CASES["be_i4"][0].tobytes()
    r = client.get(f"/datasets/{oid}/value", params={"domain": "/", "select": "[1:3]"},
                   headers={"Accept": "application/octet-stream"})
    assert np.frombuffer(r.content, ">i4").tolist() == [1, 2]
    # variable-length strings have no fixed-size layout: JSON even when binary is asked for
    r = client.get(f"/datasets/{_h5web_ids(client)['ustrs']}/value", params={"domain": "/"},
                   headers={"Accept": "application/octet-stream"})
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["value"] == ["x", "yé", "zzz"]


def test_cors_preflight(client: httpx.Client) -> None:
    r = client.options(f"/groups/{ROOT_ID}", headers={
        **ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "GET" in r.headers["access-control-allow-methods"]


def test_ids_are_stable_and_well_formed(client: httpx.Client) -> None:
    ids = _h5web_ids(client)
    for oid in ids.values():
        assert oid[:2] in ("g-", "d-") and len(oid) == 38
    assert ids == _h5web_ids(client)


BAD_REQUESTS = [
    ("GET", "/groups/g-00000000-0000-0000-0000-000000000000", None, 404),
    ("GET", "/groups/nonsense", None, 404),
    ("GET", "/datasets/{f32}/value?select=[0:9,:]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[0:1]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[a,b]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[-1,:]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[2:1,:]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[::0,:]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[[7],:]", None, 400),
    ("GET", "/datasets/{f32}/value?select=[[0,:]", None, 400),
    ("POST", "/datasets/{f32}/value", b"\x01\x02\x03", 400),
    ("POST", "/datasets/{f32}/value", np.array([[9, 9]], "<u8").tobytes(), 400),
    ("POST", "/datasets/{f32}/value", b"{not json", 400),
    ("POST", "/datasets/{f32}/value", b'{"select": 5}', 400),
    ("POST", "/datasets/{f32}/value", b'{"points": [[0]]}', 400),
    ("GET", "/groups/{f32}", None, 404),
    ("GET", "/datasets/{f32}/attributes/nope", None, 404),
    ("GET", f"/groups/{ROOT_ID}/links/none", None, 404),
    ("GET", f"/groups/{ROOT_ID}/links/nope", None, 404),
    ("GET", f"/groups/{ROOT_ID}/attributes/nope", None, 404),
    ("PUT", "/", b"{}", 405),
    ("DELETE", "/", None, 405),
    ("PUT", f"/groups/{ROOT_ID}/links/x", b"{}", 405),
    ("PUT", "/datasets/{f32}/value", b"{}", 405),
    ("POST", "/groups", b"{}", 405),
    ("DELETE", "/datasets/{f32}", None, 405),
]


@pytest.mark.parametrize("method,path,body,status", BAD_REQUESTS,
                         ids=[f"{m} {p}" for m, p, _, _ in BAD_REQUESTS])
def test_errors_are_4xx(client: httpx.Client, method: str, path: str, body: Any,
                        status: int) -> None:
    ids = _h5web_ids(client)
    path = path.replace("{f32}", ids["f32"])
    params = {"domain": "/"}
    if "?select=" in path:
        path, select = path.split("?select=")
        params["select"] = select
    ctype = "application/octet-stream" if body and not body.startswith(b"{") else "application/json"
    r = client.request(method, path, params=params, content=body,
                       headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    assert r.headers.get("access-control-allow-origin") == "*" or status == 405


def test_unservable_values_are_left_out_of_links(client: httpx.Client) -> None:
    ids = _h5web_ids(client)
    for name in ("none", "obj", "complex", "mixed", "dt64", "has/slash"):
        assert name not in ids
    data_id = _get(client, f"/groups/{ROOT_ID}", include_links=1)["links"]["data"]["id"]
    g = _get(client, f"/groups/{data_id}")
    assert g["linkCount"] == len(CASES)
    names = [a["name"] for a in _get(client, f"/groups/{data_id}/attributes")["attributes"]]
    assert names == ["NX_class", "n", "arr", "names", "flag"]
