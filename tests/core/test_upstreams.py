"""ZeroMQ upstream of an ingester on real sockets: ``has_more`` tells whether a message waits
(the data loop asks after every read instead of reading until pyzmq raises ``zmq.Again``)."""

from __future__ import annotations

import zmq

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
