"""The controller REST API with the old body shapes (COMPAT §4), against a live cluster."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

import dranspose
from tests.cluster import Cluster, NewUpstream, StartCluster, Upstream, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


@pytest.fixture
def cluster(start_cluster: StartCluster, new_upstream: NewUpstream) -> tuple[Cluster, Upstream]:
    up = new_upstream()
    return start_cluster(WORKER, REDUCER, {"cam": (up.url, passthrough())}, nworkers=1), up


def test_old_body_shapes_and_progress(cluster: tuple[Cluster, Upstream]) -> None:
    c, up = cluster
    # legacy /mapping with the old VirtualWorker JSON, tags as lists
    legacy = {"cam": [[{"tags": ["generic"], "constraint": 0}], None, []]}
    r = c.post("/api/v1/mapping", json=legacy, params={"all_wrap": "false"})
    assert r.status_code == 200 and isinstance(r.json(), str)
    as_sequence = {"parts": {"main": legacy}, "sequence": ["main"]}  # the legacy body, kept as its text
    assert c.get("/api/v1/sequence") == as_sequence
    assert c.get("/api/v1/mapping") == {"uuid": r.json(), **as_sequence}
    p = c.get("/api/v1/progress")
    assert {"last_assigned", "completed_events", "total_events", "finished"} <= set(p) and p["total_events"] == 3
    for i in range(2):
        up.send(b"x%d" % i)
    assert c.wait_finished()["completed_events"] == 3
    # /sequence with parts and a sequence, all_wrap defaulting to true
    body = {"parts": {"p": {"cam": [[{"tags": ["generic"], "constraint": 1}]]}}, "sequence": ["p", "p"]}
    uuid = c.post("/api/v1/sequence", json=body).json()
    assert c.get("/api/v1/sequence") == body
    assert c.get("/api/v1/mapping") == {"uuid": uuid, **body}
    assert c.get("/api/v1/progress")["total_events"] == 4
    for i in range(4):
        up.send(b"y%d" % i)
    c.wait_finished()
    stop = c.post("/api/v1/stop")
    assert stop.status_code == 200


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/v1/mapping", {"other": [None]}, "no ingester serves"),
        ("/api/v1/mapping", {"cam": [[{"tags": ["gpu"], "constraint": 0}]]}, "no worker has the tags"),
        ("/api/v1/mapping", {"cam": [1]}, "entry"),
        ("/api/v1/mapping", ["cam"], "must be an object"),
        ("/api/v1/sequence", {"parts": {}}, "sequence"),
        ("/api/v1/sequence", {"parts": {"p": {"cam": [None]}}, "sequence": ["q"]}, "unknown part"),
    ],
)
def test_bad_bodies_get_400_with_a_message(cluster: tuple[Cluster, Upstream], path: str, body: object, message: str) -> None:
    c, _ = cluster
    r = c.post(path, json=body)
    assert r.status_code == 400
    assert message in r.json()["detail"]


def test_not_json_is_400(cluster: tuple[Cluster, Upstream]) -> None:
    c, _ = cluster
    r = c.post("/api/v1/mapping", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_parameters_status_config_load_logs_and_pages(cluster: tuple[Cluster, Upstream]) -> None:
    c, _ = cluster
    assert c.post("/api/v1/parameter/free_form", content=b"\x00\x01raw").status_code == 200
    assert c.client.get("/api/v1/parameter/free_form").content == b"\x00\x01raw"
    assert c.client.get("/api/v1/parameter/scale").content == b"1"  # declared default
    assert c.client.get("/api/v1/parameter/unknown").status_code == 404
    params = {p["name"]: p for p in c.get("/api/v1/parameters")}
    assert params["scale"]["dtype"] == "int" and params["scale"]["default"] == 1
    assert params["dump_prefix"]["dtype"] == "str"  # the ingesters' recording switch
    cfg = c.get("/api/v1/config")
    assert cfg["workers"][0]["name"] == "w0" and cfg["ingesters"][0]["streams"] == ["cam"] and cfg["reducer"]
    versions = {cfg["controller"]["version"], cfg["reducer"]["version"]}
    versions |= {c["version"] for c in cfg["workers"] + cfg["ingesters"]}
    assert versions == {dranspose.__version__}  # every component advertises the one version
    assert c.get("/openapi.json")["info"]["version"] == dranspose.__version__
    status = c.get("/api/v1/status")
    assert status["components"]["worker"] == ["w0"] and status["error_count"] == 0
    load = c.get("/api/v1/load", params=[("intervals", 1), ("intervals", 10)])
    assert set(load["w0"]["events_per_s"]) == {"1", "10"}
    assert isinstance(c.get("/api/v1/logs"), list)
    page = c.client.get("/")
    assert page.status_code == 200 and "/api/v1/dashboard" in page.text
    openapi = c.get("/openapi.json")
    assert "/api/v1/mapping" in openapi["paths"] and "/api/v1/parameter/{name}" in openapi["paths"]


def test_build_meta_file_shows_in_config(redis_url: str, tmp_path: Path, exit_stack: ExitStack) -> None:
    import json as _json

    from dranspose.config import Settings
    from dranspose.services.worker import Worker

    meta = tmp_path / "build.json"
    meta.write_text(_json.dumps({"commit": "abc123", "image": "dranspose:test"}))
    worker = Worker("metaworker", Settings(redis_url=redis_url, build_meta_file=str(meta)), WORKER)
    exit_stack.callback(worker.stop)
    assert worker.state()["build"] == {"commit": "abc123", "image": "dranspose:test"}
