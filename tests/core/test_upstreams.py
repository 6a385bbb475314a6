"""Upstreams of an ingester on real sockets: ``has_more`` tells whether a message waits, and
``receive`` never blocks (the data loop asks after a pass's first read, then reads on until a
read returns no message)."""

from __future__ import annotations

import zmq

from dranspose.services.custom_ingester import SourcePump, SourceUpstream
from dranspose.services.upstreams import ZmqUpstream
from tests.waiting import poll_until


def test_has_more_says_whether_a_message_waits() -> None:
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    upstream = ZmqUpstream(ctx, f"tcp://127.0.0.1:{port}", "PULL")
    try:
        assert not upstream.has_more()
        assert upstream.receive() == []
        for i in range(3):
            push.send_multipart([b"head %d" % i, b"data"])
        got: list[list[bytes]] = []
        while len(got) < 3:  # the messages come in one by one: each is read once it waits
            poll_until(upstream.has_more, "a message waits", 5, interval=0.001)
            got += [[bytes(f) for f in m] for m in upstream.receive()]
        assert got == [[b"head %d" % i, b"data"] for i in range(3)]
        assert not upstream.has_more()
        assert upstream.receive() == []
    finally:
        upstream.close()
        push.close(0)
        ctx.term()


def test_a_custom_source_with_nothing_ready_reads_as_no_message() -> None:
    """A custom ingester's generator that has nothing ready must not stop the data loop: its
    upstream's ``receive`` returns no message (a blocking read would hang the ingester)."""
    ctx = zmq.Context()
    pump = SourcePump(ctx, owner=None, stream="cam")  # type: ignore[arg-type]  # never started: no generator
    pump.pull.setsockopt(zmq.RCVTIMEO, 2000)  # a blocking read fails here (zmq.Again) instead of hanging the test
    upstream = SourceUpstream(pump)
    push = ctx.socket(zmq.PUSH)
    push.connect(pump.endpoint)
    try:
        assert upstream.receive() == []
        push.send_multipart([b"custom", b"frame"])
        poll_until(upstream.has_more, "the item waits", 5, interval=0.001)
        assert [[bytes(f) for f in m] for m in upstream.receive()] == [[b"custom", b"frame"]]
        assert upstream.receive() == []
    finally:
        push.close(0)
        upstream.close()
        ctx.term()
