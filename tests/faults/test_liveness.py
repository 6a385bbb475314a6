"""Liveness in one process (threads, real Redis/ZeroMQ/HTTP): a stuck ``process_event`` is
reported with worker, event and seconds, and with an event timeout the worker is treated as
dead so the scan goes on; malformed control messages are counted, never fatal."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import pytest
import zmq

from dranspose.config import Settings
from dranspose.store.keys import Keys
from tests.cluster import Cluster, passthrough

WORKER = "tests.faults.payload:StuckWorker"
REDUCER = "tests.faults.payload:ListReducer"


@dataclasses.dataclass
class TimedCluster(Cluster):
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    def settings(self, **kw: Any) -> Settings:
        return super().settings(**{**self.overrides, **kw})


@pytest.fixture
def upstream() -> Iterator[tuple[zmq.Socket, str]]:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(0)


def one_constraint_map(n: int) -> dict[str, Any]:
    return {"a": [[{"tags": ["generic"], "constraint": 0}] for _ in range(n)]}


@pytest.mark.allow_error_log
def test_stuck_event_reported_then_timed_out(redis_url: str, upstream: tuple[zmq.Socket, str]) -> None:
    up, url = upstream
    overrides = {"event_stuck_after": 1.0, "event_timeout": 2.5}
    c = TimedCluster(redis_url, WORKER, REDUCER, {"a": (url, passthrough())}, nworkers=2, overrides=overrides).start()
    try:
        n = 10
        c.set_mapping(one_constraint_map(n), all_wrap=False)
        for i in range(n):
            up.send(b"f%d" % i)
        stuck = c.wait_until_value(lambda: c.get("/api/v1/progress")["stuck"], "stuck reported", 10)
        assert stuck[0]["event"] == 3 and stuck[0]["seconds"] >= 1.0 and stuck[0]["worker"] in ("w0", "w1")
        progress = c.wait_finished(timeout=30)
        assert progress["completed_events"] + progress["failed_events"] == n
        faults = c.get("/api/v1/status")["faults"]
        assert any("stuck" in f["what"] and f["events"] == [3] for f in faults)
        assert any("event timeout" in f["what"] for f in faults)
        held = set(c.reducer.hooks.instance.events)
        assert held == set(range(n)) - set(progress["failed"])
    finally:
        c.stop()


@pytest.mark.allow_error_log
def test_malformed_control_messages_are_counted_not_fatal(redis_url: str, upstream: tuple[zmq.Socket, str]) -> None:
    up, url = upstream
    c = TimedCluster(redis_url, "tests.faults.payload:EventWorker", REDUCER, {"a": (url, passthrough())}, nworkers=1).start()
    try:
        keys = Keys()
        r = c.running["reducer"].component.redis
        r.xadd(keys.updates(), {"msg": b'{"type": "finish", "target": 3}'})
        r.xadd(keys.updates(), {"msg": b"\xff not json"})
        uuid = c.set_mapping(one_constraint_map(5), all_wrap=False)
        r.xadd(keys.assigned(uuid), {"a": b'{"mapping": "x", "events": [[1, {"a": 7}]]}'})
        r.xadd(keys.done(uuid), {"m": b'{"w": "w0", "done": ["1"]}'})
        for i in range(5):
            up.send(b"f%d" % i)
        progress = c.wait_finished(timeout=20)
        assert progress["completed_events"] == 5 and progress["failed_events"] == 0
        status = c.get("/api/v1/status")
        assert status["errors"]["worker:w0"].get("control", 0) >= 3
    finally:
        c.stop()
