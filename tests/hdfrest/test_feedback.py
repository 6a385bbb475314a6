"""Feedback channel: SSE and ZMQ PUB subscribers get every message in order; catch-up with
Last-Event-ID; the example client stops a scan through the controller's /api/v1/stop."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np
import pytest
import zmq
from fastapi import FastAPI
from tests.cluster import Spawn
from tests.hdfrest.server_util import FiveXXRecorder, Source, serve

from dranspose.hdfrest import create_app
from dranspose.hdfrest.feedback import FeedbackHub, mount_feedback

pytestmark = pytest.mark.e2e  # feedback servers and the example client process

EXAMPLE = Path(__file__).parents[2] / "examples" / "feedback_client.py"


def _sse(url: str, out: list[dict[str, Any]], until: int | Callable[[dict[str, Any]], bool],
         headers: dict[str, str] | None = None, ready: threading.Event | None = None) -> None:
    """Collect the SSE envelopes of ``url`` into ``out`` until one has ``seq >= until`` (or
    ``until(envelope)`` is true)."""
    done = until if callable(until) else (lambda env: env["seq"] >= until)
    with httpx.stream("GET", url, headers=headers or {}, timeout=30) as rsp:
        assert rsp.headers["content-type"].startswith("text/event-stream")
        if ready:
            ready.set()
        data = []
        for line in rsp.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                env = json.loads("".join(data))
                data = []
                out.append(env)
                if done(env):
                    return


def _wait(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_every_message_in_order_over_sse_and_zmq(exit_stack: ExitStack) -> None:
    hub = FeedbackHub()
    source = Source({"line": np.zeros(10)})
    app = create_app(source)
    mount_feedback(app, hub)
    zurl = hub.bind_zmq("tcp://127.0.0.1:*")
    sub = exit_stack.enter_context(zmq.Context.instance().socket(zmq.SUB))
    sub.setsockopt(zmq.SUBSCRIBE, b"feedback")
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    sub.connect(zurl)
    rec = FiveXXRecorder(app)
    n = 300
    with serve(rec) as url:
        # ZMQ slow joiner: warm up until the subscriber receives
        while True:
            first = hub.emit({"warmup": True})
            try:
                env = json.loads(sub.recv_multipart()[1])
                if env["seq"] == first:
                    break
            except zmq.Again:
                pass
        got: list[dict[str, Any]] = []
        ready = threading.Event()
        start = hub.last_seq
        t = threading.Thread(target=_sse, args=(url + "/feedback", got, start + n),
                             kwargs={"ready": ready})
        t.start()
        assert ready.wait(10)
        _wait(lambda: len(hub._subscribers) == 1)

        def scan() -> None:  # the reducer: process_result updates publish + emits
            for i in range(n):
                with source.publish_rlock:
                    source.publish["line"][:] = i
                hub.emit({"event": i, "mean": np.float32(i) / 2, "quality": "good"})

        scanner = threading.Thread(target=scan)
        scanner.start()
        zgot = [json.loads(sub.recv_multipart()[1]) for _ in range(n)]
        scanner.join(10)
        t.join(30)
        hub.close()
    for received in (got, zgot):
        assert [e["message"]["event"] for e in received] == list(range(n))
        assert [e["seq"] for e in received] == list(range(start + 1, start + n + 1))
        assert received[10]["message"]["mean"] == 5.0
    assert rec.failures == []


def test_last_event_id_catch_up_and_bad_messages() -> None:
    hub = FeedbackHub(history=100)
    app = FastAPI()
    mount_feedback(app, hub, path="/fb")
    seqs = [hub.emit({"i": i}) for i in range(5)]
    with pytest.raises(TypeError):
        hub.emit(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hub.emit({"obj": object()})
    with pytest.raises(ValueError):
        hub.emit({"big": "x" * 100_000})
    assert hub.last_seq == seqs[-1]
    with serve(app) as url:
        got: list[dict[str, Any]] = []
        _sse(url + "/fb", got, until=seqs[-1], headers={"Last-Event-ID": str(seqs[1])})
        assert [e["message"]["i"] for e in got] == [2, 3, 4]
        hub.close()


def test_example_client_stops_the_scan(exit_stack: ExitStack, spawn: Spawn) -> None:
    stops: list[float] = []
    controller = FastAPI()

    @controller.post("/api/v1/stop")
    def stop() -> dict[str, bool]:
        stops.append(time.time())
        return {"stopped": True}

    hub = FeedbackHub()
    reducer = FastAPI()
    mount_feedback(reducer, hub)
    curl = exit_stack.enter_context(serve(controller))
    rurl = exit_stack.enter_context(serve(reducer))
    exit_stack.callback(hub.close)  # ends the SSE stream before the servers stop
    proc = spawn([sys.executable, str(EXAMPLE), "--sse", rurl + "/feedback", "--controller", curl,
                  "--stop-when", "quality == 'bad'", "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait(lambda: len(hub._subscribers) == 1, timeout=30)
    for i in range(10):
        hub.emit({"line": i, "quality": "bad" if i == 6 else "good"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(stops) == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["message"] == {"line": 6, "quality": "bad"}


def test_subscriber_gets_every_message_in_order_during_a_replayed_scan(
        captures: Path) -> None:
    from dranspose.replay import replay
    from tests.hdfrest import feedback_payload as payload

    hub = FeedbackHub()
    payload.HUB = hub
    payload.EMITTED.clear()
    app = FastAPI()
    mount_feedback(app, hub)
    got: list[dict[str, Any]] = []
    with serve(app) as url:
        t = threading.Thread(target=_sse, args=(url + "/feedback", got, lambda env: env["message"].get("finished")))
        t.start()
        _wait(lambda: len(hub._subscribers) == 1)
        summary = replay("tests.hdfrest.feedback_payload:Worker",
                         "tests.hdfrest.feedback_payload:Reducer",
                         [captures / "dump_xrd.cbors"], latency=0.002)
        t.join(30)
        hub.close()
    assert summary.errors == 0 and summary.results == len(payload.EMITTED) > 5
    assert [e["message"]["event"] for e in got[:-1]] == payload.EMITTED
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert got[-1]["message"] == {"finished": True}
