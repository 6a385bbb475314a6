"""Recording in the distributed pipeline and replaying the recording; a raw capture streamed
into a running ingester (issue 3's pipeline tests)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from dranspose.protocols.stins import StinsCutter
from dranspose.replay import replay
from dranspose.sources.streamer import Streamer, stream_file
from tests.cluster import Cluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


def test_record_scan_then_replay_gives_identical_results(redis_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DRANSPOSE_DUMP_ROOT", str(tmp_path))  # dumps are confined under the dump root
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, WORKER, REDUCER, {"a": (f"tcp://127.0.0.1:{port}", passthrough("Ta"))}).start()
    try:
        prefix = str(tmp_path / "dump_")
        assert c.post("/api/v1/parameter/dump_prefix", content=prefix.encode()).status_code == 200
        n = 15
        uuid = c.set_mapping({"a": [[{"tags": ["generic"], "constraint": i % 3}] for i in range(n)]})
        for i in range(n + 2):
            up.send_multipart([b"hdr%d" % i, os.urandom(64)])
        c.wait_finished()
        live = {r.event_number: r.payload["frames"] for r in c.reducer.hooks.instance.results}
    finally:
        c.stop()
        up.close(0)
    dump = tmp_path / f"dump_a-ingester-{uuid}.cbors"
    c.wait_until(lambda: dump.exists() and dump.stat().st_size > 0, "dump written", 10)
    done = threading.Event()
    summary: Any = replay(WORKER, REDUCER, zmq_files=[str(dump)], done_event=done, nworkers=2)
    assert done.is_set()
    assert summary.events == n + 2
    # the replayed events carry the same frames as the live ones
    from dranspose.dumps.dumpfile import read_dump

    replayed = {m.event_number: {k: [bytes(f) for f in s.frames] for k, s in m.streams.items()} for m in read_dump(str(dump))}
    assert replayed == live


def test_raw_capture_streamed_into_running_ingester(redis_url: str, captures: Path) -> None:
    capture = captures / "dump_xrd.cbors"
    url_holder = Streamer("tcp://127.0.0.1:0", "PUSH")
    url = url_holder.endpoint
    c = Cluster(redis_url, "examples.tutorial.worker:TutorialWorker", "examples.tutorial.reducer:TutorialReducer",
                {"xrd": (url, StinsCutter)}).start()
    try:
        c.set_mapping({"xrd": [[{"tags": ["generic"], "constraint": i}] for i in range(9)]})
        from dranspose.dumps.dumpfile import read_messages

        assert url_holder.wait_for_peer(10)
        sent = url_holder.send(lambda: read_messages(str(capture), "xrd"))
        assert sent == 11
        c.wait_finished()
        live = dict(c.reducer.hooks.publish)
    finally:
        url_holder.close(1)
        c.stop()
    offline = replay_publish("examples.tutorial.worker:TutorialWorker", "examples.tutorial.reducer:TutorialReducer", capture)
    assert live["filename"] == offline["filename"] and len(live["sum"]) == 9
    np.testing.assert_allclose(live["sum"], offline["sum"])
    np.testing.assert_allclose(live["map"], offline["map"])
    np.testing.assert_allclose(live["profile"], offline["profile"])


def replay_publish(worker: str, reducer: str, dump: Path) -> dict[str, Any]:
    """Replay ``dump`` serving HDF REST (as users do with --port) and read it with h5pyd."""
    import h5pyd

    done, stop = threading.Event(), threading.Event()
    ports: list[int] = []
    t = threading.Thread(
        target=replay,
        args=(worker, reducer),
        kwargs=dict(zmq_files=[str(dump)], port=0, on_serving=ports.append, done_event=done, stop_event=stop),
        daemon=True,
    )
    t.start()
    try:
        assert done.wait(30) and ports
        with h5pyd.File(f"http://localhost:{ports[0]}/", "r") as f:
            return {"filename": f["filename"][()].decode() if isinstance(f["filename"][()], bytes) else f["filename"][()],
                    "sum": f["sum"][:], "map": f["map"][:], "profile": f["profile"][:]}
    finally:
        stop.set()
        t.join(10)
