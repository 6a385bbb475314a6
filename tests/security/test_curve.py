"""Optional ZeroMQ CURVE on the data sockets: a pipeline with the key runs its scans; a peer
without the key (or with another one) cannot deliver results to the reducer."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth

from dranspose.transport.curve import CurveKeys, secure_client
from tests.cluster import Cluster, passthrough

RESULT = [b'{"event_number":1,"worker":"w0","parameters_hash":null,"mapping":null,"buffers":0}', pickle.dumps({"x": 1})]


def test_curve_pipeline_admits_only_key_holders(redis_url: str, upstream: tuple[zmq.Socket, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _pub, secret_file = zmq.auth.create_certificates(str(tmp_path), "pipeline")
    _opub, other_file = zmq.auth.create_certificates(str(tmp_path), "other")
    monkeypatch.setenv("DRANSPOSE_CURVE_KEY_FILE", secret_file)
    sock, url = upstream
    cluster = Cluster(redis_url, "tests.payloads.recording:RecordingWorker", "tests.payloads.recording:RecordingReducer",
                      {"a": (url, passthrough("Ta"))}, nworkers=1).start()
    ctx = zmq.Context.instance()
    rogues = []
    try:
        n = 5
        cluster.set_mapping({"a": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]})
        for _ in range(n + 2):
            sock.send(b"x")
        assert cluster.wait_finished()["completed_events"] == n + 2
        before = cluster.reducer.total_processed
        assert before == n + 2
        for keys in (None, CurveKeys.load(other_file)):
            rogue = ctx.socket(zmq.PUSH)
            rogue.setsockopt(zmq.SNDTIMEO, 500)
            secure_client(rogue, keys) if keys is not None else None
            if keys is not None:
                rogue.curve_serverkey = CurveKeys.load(secret_file).public  # knows the server key, not the secret
            rogue.connect(cluster.reducer.url)
            rogues.append(rogue)
            for _ in range(3):
                try:
                    rogue.send_multipart(RESULT)
                except zmq.Again:
                    pass
        time.sleep(1.0)
        assert cluster.reducer.total_processed == before
        assert not cluster.reducer.errors  # nothing reached the decoder either
        holder = ctx.socket(zmq.PUSH)  # the same message from a key holder does arrive (and is counted: stale)
        secure_client(holder, CurveKeys.load(secret_file))
        holder.connect(cluster.reducer.url)
        rogues.append(holder)
        holder.send_multipart(RESULT)
        cluster.wait_until(lambda: cluster.reducer.total_processed > before or cluster.reducer.stale > 0, "key holder delivered", 10)
    finally:
        for r in rogues:
            r.close(linger=0)
        cluster.stop()
