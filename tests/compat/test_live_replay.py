"""Old-style payloads and a custom Python ingester in a live pipeline, recorded with
``dump_prefix``, then replayed from the dumps and the controller's parameter file: the same
published results (the reducer publishes only from its timer), the same ``state`` fields, the
payload's own log records in /api/v1/logs and log_stream, and the old REST shapes."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import zmq

import dranspose
from dranspose.protocol import EnsembleState
from dranspose.replay import replay
from dranspose.services.custom_ingester import SourceFactory
from tests.cluster import Cluster
from tests.compat import old_payloads
from tests.compat.old_payloads import JsonPullIngester

WORKER = "tests.compat.old_payloads:MeanWorker"
REDUCER = "tests.compat.old_payloads:TimerFitReducer"
N = 12
META = {"commit_hash": "0123abcd", "branch_name": "main", "timestamp": "2026-01-02T03:04:05Z", "repository_url": "https://example.org/ana.git"}


def vw(c: int) -> list[dict[str, Any]]:
    return [{"tags": ["generic"], "constraint": c}]


def wait_for(cond: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def live(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[Cluster, zmq.Socket]]:
    # the CLI sets the root level from LOG_LEVEL in each process; here, in one process, other
    # libraries (h5pyd) may have raised it: set it as a deployment with LOG_LEVEL=WARNING would
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("DRANSPOSE_DUMP_ROOT", str(tmp_path))
    meta = tmp_path / "build.json"
    meta.write_text(json.dumps(META))
    monkeypatch.setenv("BUILD_META_FILE", str(meta))
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    streams = {
        "cam": (f"tcp://127.0.0.1:{port}", SourceFactory(JsonPullIngester), "SOURCE"),
        "temperature": ("", SourceFactory(JsonPullIngester), "SOURCE"),
    }
    old_payloads.REDUCERS.clear()
    c = Cluster(redis_url, WORKER, REDUCER, streams, nworkers=2, reducer_http=True).start()
    try:
        yield c, up
    finally:
        c.stop()
        up.close(0)


def published_values(reducer: Any) -> list[int]:
    return [int(v) for v in reducer.publish["values"]]


def test_live_scan_recorded_and_replayed_gives_the_same_published_results(live: tuple[Cluster, zmq.Socket], tmp_path: Path) -> None:
    c, up = live
    # parameters: the POST returns the new parameters hash; dump_prefix outside the root is refused
    outside = c.post("/api/v1/parameter/dump_prefix", content=b"/etc/dranspose_")
    assert outside.status_code == 400 and str(tmp_path) in outside.json()["detail"]
    assert c.post("/api/v1/parameter/dump_prefix", content=str(tmp_path / "dump_").encode()).status_code == 200
    r = c.post("/api/v1/parameter/offset", content=b"5")
    assert r.status_code == 200
    digest = r.json()
    assert isinstance(digest, str) and len(digest) == 64

    uuid = c.set_mapping({"cam": [vw(i % 2) for i in range(N)], "temperature": [vw(i % 2) for i in range(N)]})
    up.send(b"header")
    for i in range(1, N + 1):
        up.send(b"v%d" % (i * 10))
    up.send(b"end")
    progress = c.wait_finished()
    assert progress["completed_events"] == N + 2
    assert progress["last_assigned"] == progress["total_events"] == N + 2  # a count, as before

    reducer = old_payloads.REDUCERS[-1]
    expected = [-1] + [i * 10 + 5 for i in range(1, N + 1)]  # row 0 (the header) never filled
    # only the timer publishes: it must run after the last result
    wait_for(lambda: published_values(reducer) == expected, "live timer published every value")
    assert reducer.publish["hashes"] == [digest]  # results carry the hash the POST returned
    assert reducer.publish["finished_parameters_hash"] == digest  # state.parameters_hash
    assert reducer.state_seen["name"] == "reducer" and reducer.state_seen["dranspose_version"] == dranspose.__version__
    assert reducer.state_seen["mapreduce_version"].commit_hash == META["commit_hash"]

    # /config validates as the old EnsembleState and carries the same hash (advertised states
    # follow within a heartbeat)
    def converged() -> bool:
        ensemble = EnsembleState.model_validate(c.get("/api/v1/config"))
        return all(x.parameters_hash == digest for x in [*ensemble.workers, ensemble.reducer])

    wait_for(converged, "every component advertises the new parameters hash", 5)
    ensemble = EnsembleState.model_validate(c.get("/api/v1/config"))
    assert ensemble.parameters_hash == digest
    assert sorted(ensemble.get_workers()) == ["w0", "w1"]
    assert set(ensemble.get_streams()) == {"cam", "temperature"}
    assert ensemble.workers[0].mapreduce_version is not None and ensemble.workers[0].mapreduce_version.branch_name == "main"

    # the payload's own loggers reach /api/v1/logs with the old field names; level is a minimum
    def worker_logs(level: str) -> list[dict[str, Any]]:
        return [e for e in c.get("/api/v1/logs", params={"level": level}) if e["name"] == "beamline_analysis.worker"]

    wait_for(lambda: any("temperature at event" in e["msg"] for e in worker_logs("WARNING")), "payload logs forwarded")
    entry = next(e for e in worker_logs("WARNING") if "temperature at event" in e["msg"])
    assert entry["levelname"] == "WARNING" and int(entry["lineno"]) > 0 and float(entry["created"]) > 0
    assert worker_logs("ERROR") == []
    assert c.client.get("/api/v1/logs", params={"level": "LOUD"}).status_code == 400

    # the recording: one dump per ingester plus the controller's mapping and parameter files
    dumps = [tmp_path / f"dump_{s}-ingester-{uuid}.cbors" for s in ("cam", "temperature")]
    mapping_file = tmp_path / f"dump_mapping-{uuid}.json"
    params_file = tmp_path / f"dump_parameters-{uuid}.json"
    wait_for(lambda: all(d.exists() and d.stat().st_size > 0 for d in dumps), "dumps written")
    assert json.loads(mapping_file.read_text())["sequence"] == ["main"]
    assert {"name": "offset", "data": "5"} in json.loads(params_file.read_text())

    # replay the recording: same classes, parameters from the controller's file
    stop, done = threading.Event(), threading.Event()
    summary: list[Any] = []
    t = threading.Thread(
        target=lambda: summary.append(
            replay(WORKER, REDUCER, zmq_files=[str(d) for d in dumps], parameter_file=str(params_file),
                   stop_event=stop, done_event=done, nworkers=2)
        ),
        daemon=True,
    )
    t.start()
    assert done.wait(30)
    replayed = old_payloads.REDUCERS[-1]
    assert replayed is not reducer
    # the timer keeps running after the last event until stop_event
    wait_for(lambda: published_values(replayed) == expected, "replay timer published every value")
    stop.set()
    t.join(10)
    assert summary and summary[0].events == N + 2 and summary[0].errors == 0
    assert replayed.publish["hashes"] == [digest]  # same parameters, same hash, live and replay
    assert replayed.publish["finished_parameters_hash"] == digest
    assert replayed.state_seen["mapreduce_version"].commit_hash == META["commit_hash"]


def test_old_rest_shapes(live: tuple[Cluster, zmq.Socket]) -> None:
    c, up = live
    # a map needing more workers than registered: 400 naming both numbers
    r = c.post("/api/v1/mapping", json={"cam": [[*vw(0), *vw(1), *vw(2)]]})
    assert r.status_code == 400 and "only 2 workers available, but 3 required" in r.json()["detail"]
    # the Sardana hook starts a uniform scan over the served streams it names
    r = c.post("/api/v1/sardana_hook", json={"streams": ["cam", "nope"], "scan": {"nb_points": 3}})
    assert r.status_code == 200, r.text
    assert c.get("/api/v1/mapping")["uuid"] == r.json()
    assert c.get("/api/v1/progress")["total_events"] == 5
    assert c.post("/api/v1/sardana_hook", json={"streams": ["cam"]}).status_code == 400
    # CORS as before: any origin by default
    pre = c.client.options("/api/v1/parameter/offset", headers={"Origin": "http://viewer.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] in ("*", "http://viewer.example")
    assert c.client.get("/api/v1/progress", headers={"Origin": "http://x.example"}).headers["access-control-allow-origin"] == "*"
    # the reducer's liveness endpoint
    reducer_http = c.get("/api/v1/config")["reducer"]["http"]
    assert httpx.get(f"{reducer_http}/api/v1/status").json() is True


def test_log_stream_is_newline_delimited_json(live: tuple[Cluster, zmq.Socket]) -> None:
    c, _up = live
    assert c.client is not None
    got: list[dict[str, Any]] = []

    def read() -> None:
        with c.client.stream("GET", "/api/v1/log_stream", params={"level": "WARNING"}, timeout=20) as r:
            assert r.headers["content-type"].startswith("application/x-ndjson")
            for line in r.iter_lines():
                if line.strip():
                    got.append(json.loads(line))
                    if any(e["msg"] == "streamed record 7" for e in got):
                        return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(0.5)  # the stream starts at the newest entry
    log = logging.getLogger("beamline_analysis.custom")
    log.info("below the requested level")
    log.warning("streamed record %d", 7)
    t.join(15)
    mine = [e for e in got if e["name"] == "beamline_analysis.custom"]
    assert [e["msg"] for e in mine][-1] == "streamed record 7"
    assert all(e["levelname"] == "WARNING" for e in got)


def test_consecutive_scans_through_the_custom_ingester(live: tuple[Cluster, zmq.Socket]) -> None:
    c, up = live
    for scan in range(3):
        c.set_mapping({"cam": [vw(i % 2) for i in range(4)], "temperature": [vw(i % 2) for i in range(4)]})
        up.send(b"header")  # right after the POST: nothing may be lost to the previous generator
        for i in range(1, 5):
            up.send(b"v%d" % (100 * scan + i))
        up.send(b"end")
        assert c.wait_finished()["completed_events"] == 6
        reducer = old_payloads.REDUCERS[-1]
        wait_for(lambda: published_values(reducer) == [-1, *(100 * scan + i for i in range(1, 5))], f"scan {scan} published")
