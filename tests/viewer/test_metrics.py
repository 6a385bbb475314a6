"""/metrics of controller and reducer against a live in-process cluster: Prometheus text
format (parsed by prometheus_client's own parser), names per convention, values that match the
scan that ran, per-component error categories and heartbeat ages flowing in from the states."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import Cluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


@pytest.fixture
def cluster(redis_url: str) -> Iterator[tuple[Cluster, zmq.Socket]]:
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, WORKER, REDUCER, {"cam": (f"tcp://127.0.0.1:{port}", passthrough())}, nworkers=2,
                reducer_http=True).start()
    yield c, up
    c.stop()
    up.close(0)


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matches = [v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


@pytest.mark.allow_error_log
def test_controller_and_reducer_metrics_after_a_scan(cluster: tuple[Cluster, zmq.Socket]) -> None:
    c, up = cluster
    assert c.post("/api/v1/parameter/fail_on", content=b"2").status_code == 200
    c.set_mapping({"cam": [[{"tags": ["generic"], "constraint": i}] for i in range(5)]}, all_wrap="false")
    for i in range(5):
        up.send(b"f%d" % i)
    progress = c.wait_finished()
    assert progress["completed_events"] == 5
    c.wait_until(lambda: c.get("/api/v1/status")["error_count"] >= 1, "worker error visible")
    stats = lambda: c.get("/api/v1/status")["ingesters"]["cam-ingester"]["cam"]["forwarded"]  # noqa: E731
    c.wait_until(lambda: stats() == 5, "ingester counts published (next heartbeat)")

    m = scrape(c.controller.url)  # type: ignore[union-attr]
    assert value(m, "dranspose_events_completed_total") == 5
    assert value(m, "dranspose_events_failed_total") == 0
    assert value(m, "dranspose_scan_events") == 5
    assert value(m, "dranspose_scan_progress_ratio") == 1.0
    assert value(m, "dranspose_scan_finished") == 1.0
    for name in ("w0", "w1"):
        assert value(m, "dranspose_worker_queue_depth_events", worker=name) == 0
        assert value(m, "dranspose_worker_events_per_second", worker=name) >= 0
    assert sum(value(m, "dranspose_worker_processed_events_total", worker=w) for w in ("w0", "w1")) == 5
    workers = c.get("/api/v1/status")["workers"]
    for name in ("w0", "w1"):  # frames that came before their assignment: as the worker published them
        waits = value(m, "dranspose_worker_assignment_waits_total", worker=name)
        assert 0 <= waits <= 5 and waits <= workers[name]["assignment_waits"]  # the status read later
        assert value(m, "dranspose_worker_assignment_wait_seconds_total", worker=name) >= 0
    ups = {(lab["kind"], lab["component"]) for lab, _ in m["dranspose_component_up"]}
    assert ups == {("ingester", "cam-ingester"), ("worker", "w0"), ("worker", "w1"), ("reducer", "reducer")}
    ages = [v for _, v in m["dranspose_component_heartbeat_age_seconds"]]
    assert len(ages) == 4 and all(0 <= a < 5 for a in ages)
    errors = {(lab["component"], lab["category"]): v for lab, v in m["dranspose_component_errors_total"]}
    assert sum(errors.values()) == 1 and next(iter(errors))[0] in ("w0", "w1")
    assert value(m, "dranspose_ingester_frames_forwarded_total", ingester="cam-ingester", stream="cam") == 5
    assert value(m, "dranspose_ingester_assignment_wait_seconds_total", ingester="cam-ingester", stream="cam") >= 0
    for kind, name in (("ingester", "cam-ingester"), ("worker", "w0"), ("worker", "w1"), ("reducer", "reducer")):
        assert value(m, "dranspose_data_loop_seconds_total", kind=kind, component=name, state="on_core") > 0
        assert value(m, "dranspose_data_loop_seconds_total", kind=kind, component=name, state="waiting_for_core") >= 0
    loops = c.get("/api/v1/status")["data_loops"]
    assert set(loops) == {"ingester:cam-ingester", "worker:w0", "worker:w1", "reducer:reducer"}
    assert all(v["on_core_s"] > 0 and v["waiting_for_core_s"] >= 0 for v in loops.values())
    assert value(m, "dranspose_http_requests_total", route="api", method="GET", code="200") > 0

    # the counters stay monotonic across scans
    c.set_mapping({"cam": [[{"tags": ["generic"], "constraint": i}] for i in range(3)]}, all_wrap="false")
    for i in range(3):
        up.send(b"g%d" % i)
    c.wait_finished()
    m = scrape(c.controller.url)  # type: ignore[union-attr]
    assert value(m, "dranspose_events_completed_total") == 8
    assert value(m, "dranspose_scan_events") == 3

    red = scrape(c.reducer.http.url)  # type: ignore[union-attr]
    # event 2 failed in the worker in both scans (fail_on stays set): it sent no result
    assert value(red, "dranspose_reducer_results_processed_total") == 8 - 2
    assert value(red, "dranspose_reducer_process_result_seconds_count") == 6
    assert value(red, "dranspose_reducer_process_result_seconds_bucket", le="+Inf") == 6
    assert value(red, "dranspose_reducer_process_result_seconds_sum") > 0
    assert value(red, "dranspose_reducer_stale_results_total") == 0
    # 6 results came in at least one pass and at most one pass each
    assert 1 <= value(red, "dranspose_reducer_result_passes_total") <= 6
    # HDF REST requests are counted under their own route label
    assert httpx.get(f"{c.reducer.http.url}/about").status_code == 200  # type: ignore[union-attr]
    assert httpx.get(f"{c.reducer.http.url}/groups/nonsense").status_code == 404  # type: ignore[union-attr]
    red = scrape(c.reducer.http.url)  # type: ignore[union-attr]
    assert value(red, "dranspose_http_requests_total", route="hdfrest", method="GET", code="200") == 1
    assert value(red, "dranspose_http_requests_total", route="hdfrest", method="GET", code="404") == 1
    assert value(red, "dranspose_http_request_duration_seconds_count", route="hdfrest") == 2


def test_metric_names_follow_prometheus_conventions(cluster: tuple[Cluster, zmq.Socket]) -> None:
    c, _ = cluster
    for url in (c.controller.url, c.reducer.http.url):  # type: ignore[union-attr]
        text = httpx.get(f"{url}/metrics", timeout=10).text
        for fam in text_string_to_metric_families(text):
            if fam.name.startswith(("python_", "process_")):
                continue
            assert fam.name.startswith("dranspose_"), fam.name
            if fam.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.name
            if fam.type == "histogram":
                assert fam.name.endswith("_seconds"), fam.name
            assert fam.documentation, fam.name


def test_health_endpoints(cluster: tuple[Cluster, zmq.Socket]) -> None:
    c, _ = cluster
    for url in (c.controller.url, c.reducer.http.url):  # type: ignore[union-attr]
        r = httpx.get(f"{url}/healthz", timeout=5)
        assert r.status_code == 200 and r.json()["ok"] is True


def test_reducer_health_fails_while_user_code_hangs(redis_url: str) -> None:
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, WORKER, "tests.viewer.payloads:SlowReducer", {"cam": (f"tcp://127.0.0.1:{port}", passthrough())},
                nworkers=1, reducer_http=True).start()
    try:
        c.reducer.loop_stall = 0.5
        url = f"{c.reducer.http.url}/healthz"  # type: ignore[union-attr]
        assert httpx.get(url, timeout=5).status_code == 200
        c.set_mapping({"cam": [[{"tags": ["generic"], "constraint": 0}]]}, all_wrap="false")
        up.send(b"x")  # process_result sleeps 2 s
        c.wait_until(lambda: httpx.get(url, timeout=5).status_code == 503, "health failing during the hang", 10)
        c.wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, "health back after the hang", 10)
    finally:
        c.stop()
        up.close(0)
