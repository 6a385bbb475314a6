"""The ingester tells a worker when a part is all it gets of an event (``"whole"`` in the
header), from the same assignment the worker reads: a real ingester object with its ROUTER, a
real upstream PUSH socket and real DEALER sockets as workers (its data loop's steps called in
turn, no thread)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import zmq

from dranspose.config import Settings
from dranspose.protocols.base import PassThroughCutter
from dranspose.services.ingester import Ingester, StreamSpec
from dranspose.transport import control, framing


@pytest.fixture
def sockets() -> Iterator[tuple[zmq.Context, zmq.Socket, str]]:
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    url = f"tcp://127.0.0.1:{push.bind_to_random_port('tcp://127.0.0.1')}"
    yield ctx, push, url
    ctx.destroy(linger=0)  # every socket of it, also those a failed test left open


def _dealer(ctx: zmq.Context, name: str, url: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, name.encode())
    sock.connect(url)
    sock.send(b"0" * 16)  # a ping: the ingester learns the worker
    return sock


def _pass(ing: Ingester, until: float) -> None:
    """One turn of the data loop's steps: read what upstream has, pair, send."""
    s = ing.streams["det"]
    assert s.upstream is not None
    while time.monotonic() < until and s.upstream.pollable.poll(50):  # type: ignore[union-attr]
        ing._receive(s, time.time())
    ing._dispatch(s)
    ing._flush_out()


def _received(sock: zmq.Socket, deadline: float) -> list[tuple[int, bool]]:
    """(event, whole) of every event the DEALER got (single messages and batches)."""
    out: list[tuple[int, bool]] = []
    while time.monotonic() < deadline and sock.poll(200):
        parts = sock.recv_multipart(copy=False)
        out.extend((event, whole) for event, _m, _s, _c, whole in framing.decode_all(parts))
    return out


def test_the_header_says_whole_only_where_the_part_is_all_the_worker_gets(redis_url: str, sockets: tuple) -> None:
    ctx, push, up_url = sockets
    settings = Settings(redis_url=redis_url, ingester_url="tcp://127.0.0.1:0")
    ing = Ingester("ing-whole", settings, [StreamSpec("det", up_url, "PULL", lambda: PassThroughCutter("raw"))])
    ing.open()
    try:
        assert ing.url is not None and ing.router is not None
        w0, w1 = _dealer(ctx, "w0", ing.url), _dealer(ctx, "w1", ing.url)
        deadline = time.monotonic() + 10
        while len(ing.workers) < 2 and time.monotonic() < deadline:
            ing.router.poll(100)
            ing._handle_ping()
        ing._on_mapping(control.MappingAnnounced("m-1", None, 2, frames_per_stream={"det": 4}))
        # event 0: det alone to w0 (whole); 1: det to w0, pcap (another ingester's) to w0 too
        # (not whole); 2: det to w1, pcap to w0 (whole for w1); 3: det to both, pcap to w1 too
        ing._on_assignment(control.AssignmentBatch("m-1", [
            (0, {"det": ("w0",)}),
            (1, {"det": ("w0",), "pcap": ("w0",)}),
            (2, {"det": ("w1",), "pcap": ("w0",)}),
            (3, {"det": ("w0", "w1"), "pcap": ("w1",)}),
        ]))
        for i in range(4):
            push.send_multipart([json.dumps({"frame": i}).encode()])
        until = time.monotonic() + 5
        while sum(st["forwarded"] for st in ing.state()["stream_stats"].values()) < 4 and time.monotonic() < until:
            _pass(ing, until)
        got0 = _received(w0, time.monotonic() + 3)
        got1 = _received(w1, time.monotonic() + 3)
        # event 3: said per route, not per worker: w1 also gets its pcap, so neither copy is whole
        assert sorted(got0) == [(0, True), (1, False), (3, False)], got0
        assert sorted(got1) == [(2, True), (3, False)], got1

        # a run (the controller's common form): one stream per event set -> whole
        ing._on_mapping(control.MappingAnnounced("m-2", None, 2, frames_per_stream={"det": 2}))
        run = json.loads(b'{"mapping":"m-2","first":0,"workers":["w1"],"sets":[["det"]],"t":[0,0]}')
        ing._on_assignment(control.decode_assignment(json.dumps(run)))  # type: ignore[arg-type]
        for i in range(2):
            push.send_multipart([b"%d" % i])
        until = time.monotonic() + 5
        while ing.streams["det"].forwarded < 6 and time.monotonic() < until:
            _pass(ing, until)
        assert sorted(_received(w1, time.monotonic() + 3)) == [(0, True), (1, True)]
    finally:
        ing.router.close(linger=0)  # type: ignore[union-attr]
        for s in ing.streams.values():
            if s.upstream is not None:
                s.upstream.close()
