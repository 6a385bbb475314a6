"""No message kills a component: hostile results, partial events, control entries and
upstream bytes are counted and dropped, and the scan they arrive in still completes."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import zmq

from dranspose.store.keys import Keys
from tests.cluster import Cluster, passthrough
from tests.security.test_result_allowlist import _forged_dtype_pickle, _global_pickle

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"


def hostile_results(marker: Path) -> list[list[bytes]]:
    """Result messages from the findings: each once ended the reducer or ran code in it."""
    ok = b'{"event_number":1,"worker":"w0","parameters_hash":null,"mapping":null,"buffers":0}'
    date0 = pickle.dumps(datetime.date(2020, 1, 1)).replace(b"\x07\xe4\x01\x01", b"\x00\x00\x00\x00")
    return [
        [b'{"worker":"w0","buffers":0}', pickle.dumps(1)],  # no event_number: KeyError
        [ok, date0],  # datetime.date(0, 0, 0): ValueError
        [b"[" * 100_000 + b"]" * 100_000, pickle.dumps(1)],  # deep JSON: RecursionError
        [b'{"event_number":1,"worker":"w0","mapping":[1],"buffers":0}', pickle.dumps(1)],  # TypeError
        [ok, _global_pickle("datetime", "__builtins__.get", "eval")],  # the eval gadget
        [ok, _global_pickle("os", "system", f"touch {marker}")],
        [ok, _forged_dtype_pickle()],
        [ok, b"\x80\x05garbage"],
        [b"\xff\xfe", b""],
        [b"only one frame"],
    ]


class Upstream:
    def __init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.PUSH)
        self.url = f"tcp://127.0.0.1:{self.sock.bind_to_random_port('tcp://127.0.0.1')}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.sock.close(linger=0)


def vw(c: int) -> list[dict[str, Any]]:
    return [{"tags": ["generic"], "constraint": c}]


def _fake_ingester(r: redis.Redis, ctx: zmq.Context) -> zmq.Socket:
    """A ROUTER advertised as an ingester, so workers connect to it (a hostile peer)."""
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    keys = Keys()
    r.set(keys.state("ingester", "evil"), json.dumps({"name": "evil", "url": f"tcp://127.0.0.1:{port}", "streams": []}), px=60_000)
    r.sadd(keys.members("ingester"), "evil")
    return router


@pytest.mark.allow_error_log
def test_hostile_messages_leave_every_component_processing(redis_url: str, upstream: Upstream, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    cluster = Cluster(redis_url, WORKER, REDUCER, {"a": (upstream.url, passthrough("Ta"))}, nworkers=1).start()
    ctx = zmq.Context.instance()
    r = redis.Redis.from_url(redis_url)
    keys = Keys()
    router = _fake_ingester(r, ctx)
    push = ctx.socket(zmq.PUSH)
    try:
        # 1. the reducer: every hostile result, before a scan and during it
        push.connect(cluster.reducer.url)
        for msg in hostile_results(marker):
            push.send_multipart(msg)
        # 2. the worker: hostile partial events from a peer it connected to
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        assert poller.poll(10_000), "the worker did not connect to the advertised ingester"
        identity = router.recv_multipart()[0]
        for header in [b"{", b"[1]", b'{"event_number":"x","streams":{}}', b'{"event_number":1,"streams":{"a":{"length":"9","typ":1}}}',
                       b'{"event_number":1,"streams":{},"created_at":5}', b"[" * 100_000, b'{"event_number":2,"streams":{},"created_at":"not a date"}']:
            router.send_multipart([identity, header])
        # 3. control entries written to Redis by anyone
        for bad in [b"not json", b"[1]", b'{"type":"mapping"}', b'{"type":"finish","uuid":5}', b'{"type":"mapping","uuid":[1]}']:
            r.xadd(keys.updates(), {"msg": bad})
        r.xadd(keys.updates(), {"nomsg": b"x"})
        time.sleep(0.5)
        # 4. a normal scan still runs to completion, with every result
        n = 10
        uuid = cluster.set_mapping({"a": [vw(i) for i in range(n)]})
        r.xadd(keys.assigned(uuid), {"a": b'{"mapping":"%s","events":5}' % uuid.encode()})
        r.xadd(keys.assigned(uuid), {"a": b"garbage"})
        for msg in hostile_results(marker):  # again, now a mapping is current
            push.send_multipart(msg)
        for i in range(n + 2):
            upstream.sock.send_multipart([f"m{i}".encode()])
        progress = cluster.wait_finished()
        assert progress["completed_events"] == n + 2 and progress["failed_events"] == 0
        events = sorted(res.event_number for res in cluster.reducer.hooks.instance.results)
        assert events == list(range(n + 2))
        status = cluster.get("/api/v1/status")
        reducer_errors = status["errors"]["reducer:reducer"]
        assert reducer_errors.get("result_refused", 0) >= 4  # eval gadget, os.system, forged dtype x2
        assert sum(reducer_errors.values()) >= 2 * len(hostile_results(marker)) - 2
        assert status["errors"]["worker:w0"].get("malformed", 0) >= 5
        assert sum(status["errors"]["worker:w0"].values()) >= 7
        assert not marker.exists()
        for run in cluster.running.values():
            assert run.thread.is_alive()
    finally:
        push.close(linger=0)
        router.close(linger=0)
        cluster.stop()


@pytest.mark.allow_error_log
def test_tcp_upstream_splitter_error_keeps_the_ingester(redis_url: str) -> None:
    """A position-capture device sending garbage: the ingester counts it and keeps running."""
    import socket
    import threading

    from dranspose.config import Settings
    from dranspose.protocols import positioncap
    from dranspose.services.ingester import Ingester, StreamSpec
    from dranspose.services.ingesters import resolve

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sent = threading.Event()

    def device() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"NOT OK\n" + b"\xff" * 70_000 + b"\n" + b"garbage without structure\n" * 100)
        sent.set()
        time.sleep(1.5)
        conn.close()

    threading.Thread(target=device, daemon=True).start()
    pattern, cutter = resolve("TcpPcapIngester")
    settings = Settings(redis_url=redis_url, ingester_url="tcp://127.0.0.1:0")
    ing = Ingester("pcap-ingester", settings, [StreamSpec("pcap", f"tcp://127.0.0.1:{port}", pattern, cutter)])
    t = threading.Thread(target=lambda: (ing.start_background(), ing.run()), daemon=True)
    t.start()
    try:
        assert sent.wait(10)
        time.sleep(1.0)
        assert t.is_alive()
        stats = ing.state()["stream_stats"]["pcap"]
        assert stats["malformed"] + sum(ing.errors.values()) >= 1
        assert positioncap  # the module under test is importable
    finally:
        ing.stop()
        t.join(5)
        server.close()


@pytest.mark.allow_error_log
def test_reducer_started_by_the_cli_survives_hostile_results(redis_url: str, tmp_path: Path) -> None:
    """As deployed: ``dranspose reducer`` in its own process, only its own environment."""
    ctx = zmq.Context.instance()
    probe = ctx.socket(zmq.PULL)
    port = probe.bind_to_random_port("tcp://127.0.0.1")
    probe.close(linger=0)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "REDIS_URL": redis_url,
           "REDUCER_URL": f"tcp://127.0.0.1:{port}", "REDUCER_CLASS": REDUCER, "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "dranspose.cli", "reducer", "-p", "0"], env=env, cwd=Path(__file__).parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    r = redis.Redis.from_url(redis_url)
    push = ctx.socket(zmq.PUSH)
    marker = tmp_path / "code-ran"
    try:
        key = Keys().state("reducer", "reducer")
        deadline = time.monotonic() + 30
        while r.get(key) is None:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.poll() is not None else "no state"
            time.sleep(0.1)
        push.connect(f"tcp://127.0.0.1:{port}")
        for msg in hostile_results(marker):
            push.send_multipart(msg)
        deadline = time.monotonic() + 15
        while True:
            errors = json.loads(r.get(key) or b"{}").get("errors", {})
            if sum(errors.values()) >= len(hostile_results(marker)):
                break
            assert proc.poll() is None, "the reducer process ended"
            assert time.monotonic() < deadline, errors
            time.sleep(0.1)
        assert proc.poll() is None and not marker.exists()
        assert errors.get("result_refused", 0) >= 3
    finally:
        push.close(linger=0)
        proc.terminate()
        proc.wait(10)
