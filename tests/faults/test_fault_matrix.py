"""Fault matrix, deployed as the CLI starts it (one process per component, default settings):
SIGKILL of a worker (no restart), of the reducer, the ingester, the controller and Redis each
followed by a restart, all mid-scan, and a worker paused longer than the presence TTL.

Each scan must end within 30 s of the last frame with exact accounting: completed + failed ==
total, and the completed events are exactly the events whose results the (current) reducer
process holds."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import httpx
import pytest
import numpy as np
import zmq

from tests.waiting import poll_until
from dranspose.protocols import stins
from tests.faults.harness import LocalDeployment

pytestmark = pytest.mark.e2e

FRAMES = 400
RATE = 100.0  # Hz: the scan takes 4 s of frames
END_WITHIN = 30.0


class Detector(threading.Thread):
    """A STINS detector: header, FRAMES images with frame numbers, series end; frames that
    find no ingester are dropped (like a detector whose receiver is gone)."""

    def __init__(self, url: str, frames: int = FRAMES, rate: float = RATE) -> None:
        super().__init__(daemon=True)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, 100000)
        self.sock.bind(url)
        self.frames, self.rate = frames, rate
        self.sent = 0
        self.dropped = 0
        self.last_frame_at: float | None = None
        self.image = np.arange(64, dtype=np.uint16).reshape(8, 8)

    def _send(self, parts: list[bytes]) -> None:
        try:
            self.sock.send_multipart(parts, zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def run(self) -> None:
        time.sleep(1.0)  # the ingester (re)connects to the new bind within its reconnect interval
        self._send(stins.encode_header(0))
        t0 = time.monotonic()
        for i in range(self.frames):
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._send(stins.encode_image(i + 1, i, self.image))
        self._send(stins.encode_end(self.frames + 1))
        self.last_frame_at = time.monotonic()

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def wait_for(cond: Callable[[], Any], what: str, timeout: float, dep: LocalDeployment) -> Any:
    return poll_until(cond, what, timeout, context=lambda: "\n".join(f"--- {n}\n{dep.log(n)[-3000:]}" for n in dep.procs))


def ready(dep: LocalDeployment) -> bool:
    cfg = dep.get("/api/v1/config")
    return (
        len(cfg["workers"]) == dep.nworkers
        and cfg["reducer"] is not None
        and bool(cfg["ingesters"])
        and all(len(i.get("workers", [])) == dep.nworkers for i in cfg["ingesters"])
    )


def post_map(dep: LocalDeployment) -> str:
    mapping = {dep.stream: [[{"tags": ["generic"], "constraint": i % 6}] for i in range(FRAMES)]}
    r = httpx.post(dep.controller_url + "/api/v1/mapping", json=mapping, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json())


def run_with_fault(
    dep: LocalDeployment, fault: Callable[[LocalDeployment], None], at_frame: int = FRAMES // 3, rate: float = RATE
) -> dict[str, Any]:
    """Scan FRAMES frames, apply ``fault`` mid-scan, return the final progress (asserted)."""
    wait_for(lambda: ready(dep), "deployment ready", 60, dep)
    post_map(dep)
    wait_for(lambda: all(
        st.get("mapping_uuid") for st in dep.get("/api/v1/config")["workers"]
    ), "workers on the map", 20, dep)
    det = Detector(dep.upstream_url, rate=rate)
    det.start()
    try:
        wait_for(lambda: det.sent >= at_frame, "frames sent before the fault", 30, dep)
        fault(dep)
        det.join(FRAMES / rate + 30)
        assert det.last_frame_at is not None
        progress = wait_for(
            lambda: (p := dep.get("/api/v1/progress"))["finished"] and p, "scan finished", END_WITHIN + 30, dep
        )
        took = time.monotonic() - det.last_frame_at
    finally:
        det.close()
    total = FRAMES + 2
    assert progress["total_events"] == total
    assert progress["completed_events"] + progress["failed_events"] == total, progress
    assert took <= END_WITHIN, f"scan ended {took:.1f} s after the last frame"
    held, finished = wait_for(lambda: (r := dep.reducer_results())[1] and r, "reducer finish ran", 10, dep)
    completed = set(range(total)) - set(progress["failed"])
    assert set(held) == completed, (sorted(set(held) ^ completed)[:20], progress)
    progress["took"] = took
    print(f"\nFAULT-RESULT completed={progress['completed_events']} failed={progress['failed_events']} "
          f"total={total} ended {took:.1f} s after the last frame; dropped frames {det.dropped}")
    return progress


def test_worker_killed(deployment: LocalDeployment) -> None:
    progress = run_with_fault(deployment, lambda d: d.kill("worker1"))
    assert progress["failed_events"] <= 8 + 2  # at most its credits' worth had frames there
    status = deployment.get("/api/v1/status")
    assert any(f["component"] == "worker worker1" and "dead" in f["what"] for f in status["faults"])


def test_worker_paused_longer_than_presence_ttl(deployment: LocalDeployment) -> None:
    def pause(d: LocalDeployment) -> None:
        d.pause("worker1")
        time.sleep(4.0)  # presence TTL 3 s
        d.resume("worker1")

    progress = run_with_fault(deployment, pause)
    assert progress["failed_events"] == 0, progress
    assert "worker1" in progress["workers"]
    status = deployment.get("/api/v1/status")
    assert any(f["component"] == "worker worker1" and "back after" in f["what"] for f in status["faults"])


def test_reducer_killed_and_restarted(deployment: LocalDeployment) -> None:
    def restart(d: LocalDeployment) -> None:
        d.kill("reducer")
        time.sleep(1.0)
        d.start("reducer")

    progress = run_with_fault(deployment, restart)
    assert progress["reducer_restarts"] == 1
    assert progress["failed_events"] >= 1  # what the old process held is lost


def test_ingester_killed_and_restarted(deployment: LocalDeployment) -> None:
    def restart(d: LocalDeployment) -> None:
        d.kill("ingester")
        time.sleep(1.0)
        d.start("ingester")

    # 40 Hz: frames still come when the new process is up (it takes a few seconds to start)
    progress = run_with_fault(deployment, restart, at_frame=FRAMES // 4, rate=40.0)
    assert "rejoined the scan at frame" in deployment.log("ingester")
    assert 1 <= progress["failed_events"] < FRAMES // 2, progress  # only what went by meanwhile


def test_controller_killed_and_restarted(deployment: LocalDeployment) -> None:
    def restart(d: LocalDeployment) -> None:
        d.kill("controller")
        time.sleep(1.0)
        d.start("controller")

    progress = run_with_fault(deployment, restart)
    assert progress["failed_events"] == 0, progress


def test_redis_killed_and_restarted_empty(deployment: LocalDeployment) -> None:
    wait_for(lambda: ready(deployment), "deployment ready", 60, deployment)
    r = httpx.post(deployment.controller_url + "/api/v1/parameter/beamline_note", content=b"kept", timeout=10)
    assert r.status_code == 200
    time.sleep(1.5)  # the controller keeps a copy of the parameters (every second)

    def restart(d: LocalDeployment) -> None:
        d.kill("redis")
        time.sleep(1.0)
        d.start("redis")
        t0 = time.monotonic()
        wait_for(lambda: httpx.get(d.controller_url + "/api/v1/parameter/beamline_note", timeout=2).content == b"kept",
                 "parameters written back", 10, d)
        assert time.monotonic() - t0 <= 10

    progress = run_with_fault(deployment, restart)
    assert progress["failed_events"] < FRAMES // 2, progress
    assert any(f["component"] == "redis" for f in deployment.get("/api/v1/status")["faults"])
