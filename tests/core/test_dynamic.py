"""Workers joining and dying mid-scan: new constraints go to newcomers, a dead worker's events
are reported as failed and the scan still finishes."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from typing import Any

import pytest

from tests.cluster import NewUpstream, Spawn, StartCluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_worker_joining_mid_scan_gets_new_constraints(start_cluster: StartCluster, new_upstream: NewUpstream) -> None:
    up = new_upstream()
    c = start_cluster(WORKER, REDUCER, {"a": (up.url, passthrough())}, nworkers=1, capacity=2)
    n = 40
    c.set_mapping({"a": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]})
    for i in range(11):
        up.send(b"early%d" % i)
    c.wait_until(lambda: c.get("/api/v1/progress")["completed_events"] >= 10, "first events done")
    c.add_worker("w1")
    c.wait_until(lambda: "w1" in c.get("/api/v1/progress")["workers"], "w1 admitted to the running scan")
    for i in range(11, n + 2):
        up.send(b"late%d" % i)
        time.sleep(0.002)
    progress = c.wait_finished()
    assert progress["completed_events"] == n + 2 and progress["failed_events"] == 0
    by_worker = Counter(r.worker for r in c.reducer.hooks.instance.results if 0 < r.event_number <= n)
    assert by_worker["w1"] > 0, by_worker  # the newcomer got constraints
    assert sum(by_worker.values()) == n
    late = [r for r in c.reducer.hooks.instance.results if r.worker == "w1" and 0 < r.event_number <= n]
    assert min(r.event_number for r in late) > 10


def worker_process(name: str, redis_url: str, reducer_url: str) -> dict[str, Any]:
    """``spawn`` arguments for a worker as the CLI starts it."""
    env = dict(os.environ, REDIS_URL=redis_url, REDUCER_URL=reducer_url, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), ROOT]),
               DRANSPOSE_HEARTBEAT_INTERVAL="0.2", DRANSPOSE_PRESENCE_TTL="1.0")
    cmd = [sys.executable, "-m", "dranspose.cli", "--log-level", "WARNING", "worker", "-n", name, "-c", WORKER, "--capacity", "4"]
    return dict(args=cmd, env=env, cwd=ROOT)


@pytest.mark.allow_error_log  # the ingester logs the killed worker as unreachable
def test_worker_killed_mid_scan_events_failed_scan_finishes(
    redis_url: str, start_cluster: StartCluster, new_upstream: NewUpstream, spawn: Spawn
) -> None:
    up = new_upstream()
    c = start_cluster(WORKER, REDUCER, {"a": (up.url, passthrough())}, nworkers=0)
    procs = [spawn(**worker_process(f"p{i}", redis_url, c.reducer.url)) for i in range(2)]
    c.nworkers = 2
    c.wait_ready(30)
    n = 60
    # constraint i % 2: each worker owns one constraint, so the victim holds events
    c.set_mapping({"a": [[{"tags": ["generic"], "constraint": i % 2}] for i in range(n)]})
    for i in range(21):
        up.send(b"m%d" % i)
    c.wait_until(lambda: c.get("/api/v1/progress")["completed_events"] >= 15, "some events done")
    os.kill(procs[0].pid, signal.SIGKILL)
    procs[0].wait(10)
    time.sleep(0.2)
    for i in range(21, n + 2):
        up.send(b"m%d" % i)
    progress = c.wait_finished(timeout=40)
    assert progress["finished"]
    assert progress["completed_events"] + progress["failed_events"] == n + 2
    # only events whose frames reached the dead worker fail; later ones were re-routed
    assert set(progress["failed"]) <= set(range(21))
    status = c.get("/api/v1/status")
    assert status["failed_events"] == progress["failed_events"]
    assert any(f["component"] == "worker p0" and "dead" in f["what"] for f in status["faults"])
    held = {r.event_number for r in c.reducer.hooks.instance.results}
    assert not held & set(progress["failed"])
    assert progress["completed_events"] == len(held)  # every event sends a result
    # after the death, its constraint moved to the survivor
    late = [r for r in c.reducer.hooks.instance.results if r.event_number > 30 and r.event_number <= n]
    assert late and all(r.worker == "p1" for r in late)
