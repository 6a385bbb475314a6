"""Replay decodes results with the live reducer's decoder and allow-list: what replay
refuses, live refuses, with the same error naming the global."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq

from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.replay.engine import ReplayEngine
from dranspose.replay.params import ParameterSet
from tests.cluster import Cluster, passthrough
from tests.security.result_payload import Peak, Reducer, Worker

N = 6


def _messages() -> Iterator[InternalWorkerMessage]:
    for i in range(N):
        yield InternalWorkerMessage(event_number=i, streams={"a": StreamData(typ="raw", frames=[b"x"])})


@pytest.mark.allow_error_log
def test_replay_and_live_admit_and_refuse_the_same_results(redis_url: str) -> None:
    engine = ReplayEngine(Worker, Reducer, ParameterSet([], {}), nworkers=1)
    summary = engine.run([("a", _messages())])
    replay_peaks = engine.reducer.instance.peaks  # type: ignore[attr-defined]
    assert [p.x for p in replay_peaks] == [0, 1, 2, 4, 5] and all(type(p) is Peak for p in replay_peaks)
    assert [f.event_number for f in summary.failures] == [3]
    assert "fractions.Fraction" in summary.failures[0].message

    sock = zmq.Context.instance().socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    cluster = Cluster(redis_url, "tests.security.result_payload:Worker", "tests.security.result_payload:Reducer",
                      {"a": (f"tcp://127.0.0.1:{port}", passthrough("raw"))}, nworkers=1).start()
    try:
        cluster.set_mapping({"a": [[{"tags": ["generic"], "constraint": 0}]] * (N - 2)}, all_wrap="true")
        for _ in range(N):
            sock.send(b"x")
        cluster.wait_finished()
        live = cluster.reducer.hooks.instance.peaks  # type: ignore[union-attr]
        assert sorted(p.x for p in live) == [0, 1, 2, 4, 5]
        assert cluster.reducer.errors["result_refused"] == 1
    finally:
        cluster.stop()
        sock.close(linger=0)
