"""Fault matrix, deployed as the Helm chart starts it (one CLI process per component, only its
own environment, default settings), on loopback and each component on its own network-namespace
host: SIGKILL of a worker (no restart), of the reducer, the ingester, the controller and Redis
each followed by a restart, all mid-scan, and a worker and Redis each paused longer than the
presence TTL.

Each scan must end within 30 s of the last frame with exact accounting: completed + failed ==
total, and the completed events are exactly the events whose results the (current) reducer
process holds."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from tests.faults.harness import FaultDeployment
from tests.waiting import poll_until

pytestmark = pytest.mark.e2e

FRAMES = 400
RATE = 100.0  # Hz: the scan takes 4 s of frames
END_WITHIN = 30.0


def wait_for(cond: Callable[[], Any], what: str, timeout: float, dep: FaultDeployment) -> Any:
    return poll_until(cond, what, timeout, context=dep.logs)


def ready(dep: FaultDeployment) -> bool:
    cfg = dep.get("/api/v1/config")
    return (
        len(cfg["workers"]) == dep.nworkers
        and cfg["reducer"] is not None
        and bool(cfg["ingesters"])
        and all(len(i.get("workers", [])) == dep.nworkers for i in cfg["ingesters"])
    )


def post_map(dep: FaultDeployment) -> str:
    mapping = {dep.stream: [[{"tags": ["generic"], "constraint": i % 6}] for i in range(FRAMES)]}
    r = dep.api("POST", "/api/v1/mapping", json=mapping, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json())


def run_with_fault(
    dep: FaultDeployment, fault: Callable[[FaultDeployment], None], at_frame: int = FRAMES // 3, rate: float = RATE
) -> dict[str, Any]:
    """Scan FRAMES frames, apply ``fault`` mid-scan, return the final progress (asserted)."""
    wait_for(lambda: ready(dep), "deployment ready", 60, dep)
    post_map(dep)
    wait_for(lambda: all(
        st.get("mapping_uuid") for st in dep.get("/api/v1/config")["workers"]
    ), "workers on the map", 20, dep)
    dep.start_detector(FRAMES, rate)
    wait_for(lambda: dep.detector_status()["sent"] >= at_frame, "frames sent before the fault", 30, dep)
    fault_at = time.time()
    fault(dep)
    last_frame_at = wait_for(lambda: dep.detector_status()["last_frame_at"], "last frame sent", FRAMES / rate + 30, dep)
    progress = wait_for(
        lambda: (p := dep.get("/api/v1/progress"))["finished"] and p, "scan finished", END_WITHIN + 30, dep
    )
    ended_at = time.time()
    took = ended_at - last_frame_at
    total = FRAMES + 2
    assert progress["total_events"] == total
    assert progress["completed_events"] + progress["failed_events"] == total, progress
    assert took <= END_WITHIN, f"scan ended {took:.1f} s after the last frame"
    held, finished = wait_for(lambda: (r := dep.reducer_results())[1] and r, "reducer finish ran", 10, dep)
    completed = set(range(total)) - set(progress["failed"])
    assert set(held) == completed, (sorted(set(held) ^ completed)[:20], progress)
    progress["took"] = took
    print(f"\nFAULT-RESULT completed={progress['completed_events']} failed={progress['failed_events']} "
          f"total={total} ended {took:.1f} s after the last frame, {ended_at - fault_at:.1f} s after the fault; dropped frames {dep.detector_status()['dropped']}")
    return progress


def test_worker_killed(deployment: FaultDeployment) -> None:
    progress = run_with_fault(deployment, lambda d: d.kill("worker1"))
    assert progress["failed_events"] <= 8 + 2  # at most its credits' worth had frames there
    status = deployment.get("/api/v1/status")
    assert any(f["component"] == "worker worker1" and "dead" in f["what"] for f in status["faults"])


def test_worker_paused_longer_than_presence_ttl(deployment: FaultDeployment) -> None:
    def pause(d: FaultDeployment) -> None:
        d.pause("worker1")
        time.sleep(4.0)  # presence TTL 3 s
        d.resume("worker1")

    progress = run_with_fault(deployment, pause)
    assert progress["failed_events"] == 0, progress
    assert "worker1" in progress["workers"]
    status = deployment.get("/api/v1/status")
    assert any(f["component"] == "worker worker1" and "back after" in f["what"] for f in status["faults"])


def test_reducer_killed_and_restarted(deployment: FaultDeployment) -> None:
    def restart(d: FaultDeployment) -> None:
        d.kill("reducer")
        time.sleep(1.0)
        d.start("reducer")

    progress = run_with_fault(deployment, restart)
    assert progress["reducer_restarts"] == 1
    assert progress["failed_events"] >= 1  # what the old process held is lost


def test_ingester_killed_and_restarted(deployment: FaultDeployment) -> None:
    def restart(d: FaultDeployment) -> None:
        d.kill("ingester")
        time.sleep(1.0)
        d.start("ingester")

    # 40 Hz: frames still come when the new process is up (it takes a few seconds to start)
    progress = run_with_fault(deployment, restart, at_frame=FRAMES // 4, rate=40.0)
    assert "rejoined the scan at frame" in deployment.log("ingester")
    assert 1 <= progress["failed_events"] < FRAMES // 2, progress  # only what went by meanwhile


def test_controller_killed_and_restarted(deployment: FaultDeployment) -> None:
    def restart(d: FaultDeployment) -> None:
        d.kill("controller")
        time.sleep(1.0)
        d.start("controller")

    progress = run_with_fault(deployment, restart)
    assert progress["failed_events"] == 0, progress


def test_redis_killed_and_restarted_empty(deployment: FaultDeployment) -> None:
    wait_for(lambda: ready(deployment), "deployment ready", 60, deployment)
    r = deployment.api("POST", "/api/v1/parameter/beamline_note", content=b"kept", timeout=10)
    assert r.status_code == 200
    time.sleep(1.5)  # the controller keeps a copy of the parameters (every second)

    def restart(d: FaultDeployment) -> None:
        d.kill("redis")
        time.sleep(1.0)
        d.start("redis")
        t0 = time.monotonic()
        wait_for(lambda: d.api("GET", "/api/v1/parameter/beamline_note", timeout=2).content == b"kept",
                 "parameters written back", 10, d)
        assert time.monotonic() - t0 <= 10

    progress = run_with_fault(deployment, restart)
    assert progress["failed_events"] < FRAMES // 2, progress
    assert any(f["component"] == "redis" for f in deployment.get("/api/v1/status")["faults"])


def test_redis_paused_then_resumed(deployment: FaultDeployment) -> None:
    """Redis stops answering without closing a connection (SIGSTOP: a stalled or partitioned
    server) for longer than the presence TTL, then answers again: nothing is lost."""
    def pause(d: FaultDeployment) -> None:
        d.pause("redis")
        time.sleep(5.0)  # presence TTL 3 s: every heartbeat waits meanwhile
        d.resume("redis")

    progress = run_with_fault(deployment, pause)
    assert progress["failed_events"] == 0, progress
