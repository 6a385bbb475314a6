"""End-to-end scans through real Redis, ZeroMQ and HTTP, components in-process."""

from __future__ import annotations

import collections
from typing import Any, Iterator

import pytest
import zmq

from tests.cluster import Cluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


class Upstream:
    """A device stand-in: a bound PUSH socket on a random loopback port."""

    def __init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.PUSH)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.url = f"tcp://127.0.0.1:{port}"

    def send(self, *parts: bytes) -> None:
        self.sock.send_multipart(list(parts))

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream]]:
    ups = {name: Upstream() for name in ("a", "b")}
    yield ups
    for u in ups.values():
        u.close()


def make_cluster(redis_url: str, upstreams: dict[str, Upstream], names: tuple[str, ...] = ("a",), **kw: Any) -> Cluster:
    return Cluster(redis_url, WORKER, REDUCER, {n: (upstreams[n].url, passthrough(f"T{n}")) for n in names}, **kw).start()


def vw(constraint: int | None, tags: tuple[str, ...] = ("generic",)) -> list[dict[str, Any]]:
    return [{"tags": list(tags), "constraint": constraint}]


def results_by_event(cluster: Cluster) -> dict[int, list[Any]]:
    out = collections.defaultdict(list)
    for r in cluster.reducer.hooks.instance.results:
        out[r.event_number].append(r)
    return out


def test_scan_end_to_end_with_wrap_broadcast(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    cluster = make_cluster(redis_url, upstreams)
    try:
        n = 20
        cluster.set_mapping({"a": [vw(i) for i in range(n)]})
        for i in range(n + 2):
            upstreams["a"].send(f"msg{i}".encode(), b"payload")
        progress = cluster.wait_finished()
        assert progress["completed_events"] == n + 2 == progress["total_events"]
        assert progress["failed_events"] == 0
        res = results_by_event(cluster)
        # start (0) and end (n+1) reach every worker; data events exactly one worker each
        assert sorted(r.worker for r in res[0]) == ["w0", "w1"]
        assert sorted(r.worker for r in res[n + 1]) == ["w0", "w1"]
        for i in range(1, n + 1):
            assert len(res[i]) == 1
            assert res[i][0].payload["name_from_state"] == res[i][0].worker
            assert res[i][0].payload["frames"] == {"a": [f"msg{i}".encode(), b"payload"]}
            assert res[i][0].payload["typs"] == {"a": "Ta"}
        assert cluster.reducer.hooks.instance.finished
        ticks = sum(r.payload["tick"] for rs in res.values() for r in rs)
        assert 1 <= ticks < n  # about one event per tick interval across workers gets tick=True
        assert {r.parameters_hash for rs in res.values() for r in rs} and all(
            r.parameters_hash for rs in res.values() for r in rs
        )
    finally:
        cluster.stop()


def test_two_streams_different_rates_and_constraint_stickiness(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    cluster = make_cluster(redis_url, upstreams, names=("a", "b"), nworkers=3)
    try:
        n = 30
        # stream a every event, stream b only every other event; constraints repeat (i % 4)
        mapping = {
            "a": [vw(i % 4) for i in range(n)],
            "b": [vw(i % 4) if i % 2 == 0 else None for i in range(n)],
        }
        cluster.set_mapping(mapping)
        for i in range(n + 2):
            upstreams["a"].send(f"a{i}".encode())
        nb = n // 2
        for j in range(nb + 2):
            upstreams["b"].send(f"b{j}".encode())
        cluster.wait_finished()
        res = results_by_event(cluster)
        worker_of_constraint: dict[int, str] = {}
        b_index = 0
        for i in range(n):
            event = i + 1
            (r,) = res[event]
            frames = r.payload["frames"]
            assert frames["a"] == [f"a{event}".encode()]
            if i % 2 == 0:
                b_index += 1
                assert frames["b"] == [f"b{b_index}".encode()], f"event {event}"
            else:
                assert "b" not in frames
            c = i % 4
            assert worker_of_constraint.setdefault(c, r.worker) == r.worker, "constraint moved between workers"
        assert len(set(worker_of_constraint.values())) >= 2, "constraints not spread over workers"
    finally:
        cluster.stop()


def test_discard_entries_consume_frames(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    cluster = make_cluster(redis_url, upstreams)
    try:
        cluster.set_mapping({"a": [vw(0), [], vw(1), []]}, all_wrap=False)
        for i in range(4):
            upstreams["a"].send(f"m{i}".encode())
        cluster.wait_finished()
        res = results_by_event(cluster)
        assert sorted(res) == [0, 2]
        assert res[2][0].payload["frames"]["a"] == [b"m2"]
    finally:
        cluster.stop()


def test_user_exception_is_counted_and_scan_continues(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    cluster = make_cluster(redis_url, upstreams)
    try:
        assert cluster.post("/api/v1/parameter/fail_on", content=b"3,5").status_code == 200
        cluster.set_mapping({"a": [vw(i) for i in range(8)]})
        for i in range(10):
            upstreams["a"].send(f"m{i}".encode())
        progress = cluster.wait_finished()
        assert progress["completed_events"] == 10
        res = results_by_event(cluster)
        assert 3 not in res and 5 not in res
        assert all(e in res for e in (1, 2, 4, 6, 7, 8))
        status = cluster.get("/api/v1/status")
        assert sum(e.get("process_event", 0) for e in status["errors"].values()) == 2
        logs = cluster.get("/api/v1/logs")
        assert any("requested failure at event 3" in e["message"] for e in logs)
    finally:
        cluster.stop()


def test_parameter_change_between_scans(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    cluster = make_cluster(redis_url, upstreams)
    try:
        hashes, scales = [], []
        for scale in (b"2", b"7"):
            assert cluster.post("/api/v1/parameter/scale", content=scale).status_code == 200
            cluster.set_mapping({"a": [vw(0)]})
            for i in range(3):
                upstreams["a"].send(b"x")
            cluster.wait_finished()
            data = [r for r in cluster.reducer.hooks.instance.results if r.event_number == 1]
            scales.append(data[0].payload["scale"])
            hashes.append(data[0].parameters_hash)
        assert scales == [2, 7]
        assert hashes[0] != hashes[1]
        assert cluster.client.get("/api/v1/parameter/scale").content == b"7"
        # reducer-declared parameters are in the shared namespace with their default
        assert cluster.client.get("/api/v1/parameter/reducer_label").content == b"none"
        names = {p["name"] for p in cluster.get("/api/v1/parameters")}
        assert {"scale", "fail_on", "reducer_label"} <= names
    finally:
        cluster.stop()


def test_malformed_ingester_input_is_counted(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    from dranspose.protocols.stins import StinsCutter, encode_end, encode_header, encode_image
    import numpy as np

    cluster = Cluster(redis_url, WORKER, REDUCER, {"det": (upstreams["a"].url, StinsCutter)}).start()
    try:
        cluster.set_mapping({"det": [vw(i) for i in range(3)]})
        up = upstreams["a"]
        up.send(b"garbage before the start")  # discarded (not a header): malformed JSON
        up.send(*encode_header(0, "f.h5"))
        img = np.arange(12, dtype=np.uint16).reshape(3, 4)
        up.send(*encode_image(1, 0, img))
        up.send(b"{not json")  # malformed in the middle
        up.send(*encode_image(2, 1, img))
        up.send(*encode_image(3, 2, img))
        up.send(*encode_end(4))
        progress = cluster.wait_finished()
        assert progress["completed_events"] == 5
        # the ingester's counters arrive with its next heartbeat
        cluster.wait_until(lambda: cluster.get("/api/v1/status")["ingesters"]["det-ingester"]["det"]["malformed"] >= 2, "counted")
        status = cluster.get("/api/v1/status")
        assert status["ingesters"]["det-ingester"]["det"]["malformed"] == 2
        assert status["errors"]["ingester:det-ingester"]["malformed"] == 2
    finally:
        cluster.stop()


def test_reducer_feedback_reaches_an_sse_subscriber_in_order(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    import json
    import threading

    import httpx

    cluster = Cluster(redis_url, WORKER, "tests.payloads.recording:FeedbackReducer",
                      {"a": (upstreams["a"].url, passthrough())}, nworkers=1, reducer_http=True).start()
    try:
        n = 10
        got: list[dict] = []
        url = cluster.reducer.http.url + "/feedback"
        connected = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", url, timeout=30) as r:
                connected.set()
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        got.append(json.loads(line[5:]))
                        if len(got) == n + 2:
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert connected.wait(10)
        cluster.set_mapping({"a": [vw(0) for _ in range(n)]})  # one constraint: results arrive in order
        for i in range(n + 2):
            upstreams["a"].send(b"m%d" % i)
        cluster.wait_finished()
        t.join(10)
        assert [m["message"]["event"] for m in got] == list(range(n + 2))
        assert [m["seq"] for m in got] == list(range(1, n + 3))
        state = cluster.get("/api/v1/config")["reducer"]
        assert state["feedback_sse"].endswith("/feedback")
    finally:
        cluster.stop()


def test_series_arriving_before_the_mapping_is_kept(redis_url: str, upstreams: dict[str, Upstream]) -> None:
    """A detector armed before the scan software posts the map: nothing from the start on is lost."""
    import time

    import numpy as np

    from dranspose.protocols.stins import StinsCutter, encode_end, encode_header, encode_image

    cluster = Cluster(redis_url, WORKER, REDUCER, {"det": (upstreams["a"].url, StinsCutter)}).start()
    try:
        up = upstreams["a"]
        up.send(*encode_image(0, 99, np.zeros(2, np.uint8)))  # leftover of an older series: dropped
        up.send(*encode_header(1, "early.h5"))
        for i in range(5):
            up.send(*encode_image(2 + i, i, np.full(2, i, np.uint8)))
        up.send(*encode_end(7))
        time.sleep(0.5)  # the ingester has seen the header by now
        cluster.set_mapping({"det": [vw(i) for i in range(5)]})
        progress = cluster.wait_finished()
        assert progress["completed_events"] == 7
        res = results_by_event(cluster)
        for i in range(5):
            assert res[i + 1][0].payload["frames"]["det"][1] == bytes([i, i])
    finally:
        cluster.stop()


@pytest.mark.parametrize(
    "worker, reducer",
    [
        ("tests.payloads.variants:RequiredArgsWorker", "tests.payloads.variants:TimerParamReducer"),
        ("tests.payloads.variants:KwargsOnlyWorker", "tests.payloads.variants:TimerNoArgReducer"),
        ("tests.payloads.variants:StarArgsWorker", "tests.payloads.variants:BrokenTimerReducer"),
    ],
)
def test_hook_variants_run_through_the_services(redis_url: str, upstreams: dict[str, Upstream], worker: str, reducer: str) -> None:
    import time

    cluster = Cluster(redis_url, worker, reducer, {"a": (upstreams["a"].url, passthrough())}, nworkers=1).start()
    try:
        cluster.set_mapping({"a": [vw(i) for i in range(4)]})
        for i in range(6):
            upstreams["a"].send(b"x")
        progress = cluster.wait_finished()
        assert progress["completed_events"] == 6 and progress["failed_events"] == 0
        time.sleep(0.1)
        hooks = cluster.reducer.hooks
        status = cluster.get("/api/v1/status")
        assert not any("process_event" in e or "process_result" in e for e in status["errors"].values())
        if reducer.endswith("TimerNoArgReducer"):
            assert hooks.instance.calls >= 1  # timer() runs in its own thread
        if reducer.endswith("TimerParamReducer"):
            assert hooks.instance.seen and "scale" not in hooks.instance.seen[0]  # timer(parameters)
    finally:
        cluster.stop()
