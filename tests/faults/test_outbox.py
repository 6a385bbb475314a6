"""A worker's result sends never block: a reducer that takes nothing fills a byte-bounded
queue, which drains in order once the reducer reads again."""

from __future__ import annotations

import time

import zmq

from dranspose.transport.outbox import ResultOutbox


def test_stalled_reducer_never_blocks_and_queue_is_bounded() -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 1)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 1)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        time.sleep(0.2)
        box = ResultOutbox(push, max_bytes=64 * 1024)
        payload = b"r" * 4096
        t0 = time.monotonic()
        n = 0
        while not box.full:
            box.send([b"%d" % n, payload])
            n += 1
            assert n < 10_000
        assert time.monotonic() - t0 < 5  # never waited on the reducer
        assert box.nbytes >= 64 * 1024 and len(box) > 0
        time.sleep(0.05)
        assert box.stalled_for() > 0
        got = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            box.flush()
            if pull.poll(10):
                got.append(int(pull.recv_multipart()[0]))
        assert got == list(range(n))  # every result, in order
        assert len(box) == 0 and box.nbytes == 0 and box.stalled_for() == 0.0
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        ctx.term()
