"""Recording in the distributed pipeline and replaying the recording; a raw capture streamed
into a running ingester (issue 3's pipeline tests)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dranspose.protocols.stins import StinsCutter
from dranspose.replay import replay
from tests.cluster import NewStreamer, NewUpstream, ServeReplay, StartCluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


def test_record_scan_then_replay_gives_identical_results(
    start_cluster: StartCluster, new_upstream: NewUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRANSPOSE_DUMP_ROOT", str(tmp_path))  # dumps are confined under the dump root
    up = new_upstream()
    c = start_cluster(WORKER, REDUCER, {"a": (up.url, passthrough("Ta"))})
    prefix = str(tmp_path / "dump_")
    assert c.post("/api/v1/parameter/dump_prefix", content=prefix.encode()).status_code == 200
    n = 15
    uuid = c.set_mapping({"a": [[{"tags": ["generic"], "constraint": i % 3}] for i in range(n)]})
    for i in range(n + 2):
        up.send(b"hdr%d" % i, os.urandom(64))
    c.wait_finished()
    live = {r.event_number: r.payload["frames"] for r in c.reducer.hooks.instance.results}
    c.stop()
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


def test_raw_capture_streamed_into_running_ingester(
    start_cluster: StartCluster, new_streamer: NewStreamer, serve_replay: ServeReplay, captures: Path
) -> None:
    capture = captures / "dump_xrd.cbors"
    streamer = new_streamer()
    c = start_cluster("examples.tutorial.worker:TutorialWorker", "examples.tutorial.reducer:TutorialReducer",
                      {"xrd": (streamer.endpoint, StinsCutter)})
    c.set_mapping({"xrd": [[{"tags": ["generic"], "constraint": i}] for i in range(9)]})
    from dranspose.dumps.dumpfile import read_messages

    assert streamer.wait_for_peer(10)
    sent = streamer.send(lambda: read_messages(str(capture), "xrd"))
    assert sent == 11
    c.wait_finished()
    live = dict(c.reducer.hooks.publish)
    # the same capture replayed, served over HDF REST (as users do with --port), read with h5pyd
    import h5pyd

    served = serve_replay("examples.tutorial.worker:TutorialWorker", "examples.tutorial.reducer:TutorialReducer",
                          zmq_files=[str(capture)])
    with h5pyd.File(served.url + "/", "r") as f:
        filename = f["filename"][()]
        offline = {"filename": filename.decode() if isinstance(filename, bytes) else filename,
                   "sum": f["sum"][:], "map": f["map"][:], "profile": f["profile"][:]}
    assert live["filename"] == offline["filename"] and len(live["sum"]) == 9
    np.testing.assert_allclose(live["sum"], offline["sum"])
    np.testing.assert_allclose(live["map"], offline["map"])
    np.testing.assert_allclose(live["profile"], offline["profile"])

