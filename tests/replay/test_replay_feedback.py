"""Feedback under replay works as in the reducer service: context["feedback"] and /feedback."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from dranspose.replay import replay
from tests.paths import DATA

pytestmark = pytest.mark.e2e  # a replay serving feedback

DUMP = DATA / "dump_xrd.cbors"


def test_reducer_feedback_over_sse_during_replay() -> None:
    ports: list[int] = []
    got: list[dict] = []
    start, done, stop = threading.Event(), threading.Event(), threading.Event()
    t = threading.Thread(
        target=replay,
        args=("tests.payloads.recording:RecordingWorker", "tests.payloads.recording:FeedbackReducer"),
        kwargs=dict(zmq_files=[str(DUMP)], port=0, on_serving=ports.append, start_event=start,
                    done_event=done, stop_event=stop, nworkers=1, broadcast_first=False),
        daemon=True,
    )
    t.start()
    deadline = threading.Event()
    while not ports and not deadline.wait(0.05):
        pass
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"http://localhost:{ports[0]}/feedback", timeout=30) as r:
            for line in r.iter_lines():
                connected.set()  # the first line ("retry:") is sent once subscribed; headers come before
                if line.startswith("data:"):
                    got.append(json.loads(line[5:])["message"])
                    if len(got) == 11:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    start.set()
    assert done.wait(30)
    listener.join(10)
    stop.set()
    t.join(10)
    assert [m["event"] for m in got] == list(range(11))
