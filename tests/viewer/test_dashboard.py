"""The status page's data: rates per worker from the processed-count history, ETA, stuck
events; and /api/v1/dashboard against a live cluster."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import zmq

from dranspose.services.controller.dashboard import StuckTracker, _detail, _eta, rate_series
from tests.cluster import Cluster, passthrough


def test_rate_series_per_worker() -> None:
    history = [(100.0 + t, {"w0": 10 * t, "w1": 5 * t}) for t in range(21)]
    history += [(121.0, {"w0": 210})]  # w1 gone
    series = rate_series(history, now=121.0, seconds=20, step=2)
    assert series["t"][-1] == 0.0 and series["t"][0] == -18.0
    assert set(series["workers"]) == {"w0", "w1"}
    assert all(v == pytest.approx(10.0) for v in series["workers"]["w0"])
    assert series["workers"]["w1"][:-1] == [pytest.approx(5.0)] * (len(series["t"]) - 1)
    assert series["workers"]["w1"][-1] is None
    assert rate_series(history[:1], now=100) == {"t": [], "workers": {}}
    restarted = [(0.0, {"w": 100}), (1.0, {"w": 3})]
    assert rate_series(restarted, now=1.0, seconds=10, step=1)["workers"]["w"] == [0.0]


def test_worker_detail_names_events_that_waited_for_their_assignment() -> None:
    st = {"processed": 12, "tags": ["generic"], "assignment_waits": 0, "assignment_wait_s": 0.0}
    assert _detail("worker", st) == "12 events processed, tags generic"
    st.update(assignment_waits=3, assignment_wait_s=0.0042)
    assert _detail("worker", st) == "12 events processed, 3 waited 0.0042 s for their assignment, tags generic"


def test_eta_from_recent_rate_or_average() -> None:
    progress = {"total_events": 1000, "completed_events": 400, "failed_events": 100}
    recent = [(0.0, 300), (10.0, 500)]
    assert _eta(progress, 0.0, recent, 10.0) == {"done": 500, "total": 1000, "events_per_s": 20.0, "eta_s": 25.0}
    assert _eta(progress, 0.0, [], 100.0)["eta_s"] == 100.0  # average since the start
    assert _eta({**progress, "finished": True}, 0.0, [], 10.0)["eta_s"] == 0.0
    assert _eta({"total_events": 0}, None, [], 1.0)["eta_s"] is None


def test_stuck_events_are_those_in_flight_too_long() -> None:
    tracker = StuckTracker()
    assert tracker.update("m1", {1: ["w0"], 2: ["w1"]}, now=0.0, stuck_after=10) == []
    assert tracker.update("m1", {2: ["w1"], 3: ["w0"]}, now=11.0, stuck_after=10) == [{"event": 2, "workers": ["w1"], "for_s": 11.0}]
    assert tracker.count(11.0, 10) == 1
    assert tracker.update("m2", {2: ["w1"]}, now=30.0, stuck_after=10) == []  # a new scan starts afresh


@pytest.fixture
def cluster(redis_url: str) -> Iterator[tuple[Cluster, zmq.Socket]]:
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, "tests.payloads.recording:RecordingWorker", "tests.payloads.recording:RecordingReducer",
                {"cam": (f"tcp://127.0.0.1:{port}", passthrough())}, nworkers=2, reducer_http=True).start()
    yield c, up
    c.stop()
    up.close(0)


def test_dashboard_during_and_after_a_scan(cluster: tuple[Cluster, zmq.Socket]) -> None:
    c, up = cluster
    c.set_mapping({"cam": [[{"tags": ["generic"], "constraint": i}] for i in range(4)]}, all_wrap="false")
    up.send(b"a")
    c.wait_until(lambda: c.get("/api/v1/progress")["completed_events"] == 1, "first event")
    time.sleep(0.3)
    d = c.get("/api/v1/dashboard", params={"stuck_after": 0})
    assert d["phase"] == "running" and d["progress"]["done"] == 1 and d["progress"]["total"] == 4
    assert d["progress"]["eta_s"] is not None
    assert d["stuck"]["count"] == d["progress"]["in_flight"]  # with stuck_after=0 every in-flight event counts
    kinds = {(x["kind"], x["name"]) for x in d["components"]}
    assert kinds == {("ingester", "cam-ingester"), ("worker", "w0"), ("worker", "w1"), ("reducer", "reducer")}
    assert all(x["host"] and x["heartbeat_age_s"] is not None and x["heartbeat_age_s"] < 5 for x in d["components"])
    # every data loop's time on a core and waiting for one, from the kernel's counts
    assert all(re.search(r"data loop \d+\.\d s on a core, \d+\.\d s waiting for one", x["detail"]) for x in d["components"])
    assert d["links"]["viewer"] == f"{c.reducer.http.url}/viewer"  # type: ignore[union-attr]
    assert set(d["rates"]["workers"]) <= {"w0", "w1"}
    for i in range(3):
        up.send(b"b%d" % i)
    c.wait_finished()
    d = c.get("/api/v1/dashboard")
    assert d["finished"] and d["progress"]["eta_s"] == 0.0 and d["stuck"]["count"] == 0 and d["failed"]["count"] == 0
    assert c.client.get("/api/v1/dashboard", params={"stuck_after": -1}).status_code == 422  # type: ignore[union-attr]
