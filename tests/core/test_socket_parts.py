"""``send_parts`` / ``recv_parts`` (transport.sockets) on real ZeroMQ sockets: the same message
as ``send_multipart`` / ``recv_multipart``, pyzmq's compiled methods only for pyzmq's own
socket types, a subclass's ``send``/``recv`` honoured."""

from __future__ import annotations

from typing import Any

import pytest
import zmq
import zmq.asyncio

from dranspose.transport import sockets
from dranspose.transport.sockets import NOBLOCK, recv_parts, send_parts


@pytest.fixture
def pair() -> Any:
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = b.bind_to_random_port("tcp://127.0.0.1")
    a.connect(f"tcp://127.0.0.1:{port}")
    yield a, b
    a.close(linger=0)
    b.close(linger=0)
    ctx.term()


def test_parts_of_every_kind_arrive_whole_and_in_order(pair: Any) -> None:
    a, b = pair
    big = bytes(range(256)) * 400  # above pyzmq's copy threshold: sent without a copy
    parts = [b"head", zmq.Frame(b"frame"), memoryview(b"view"), bytearray(b"array"), big, b""]
    send_parts(a, parts)
    got = recv_parts(b)
    assert [bytes(f) for f in got] == [b"head", b"frame", b"view", b"array", big, b""]
    assert all(isinstance(f, zmq.Frame) for f in got)
    send_parts(a, [b"second"], copy=True)
    assert [bytes(f) for f in recv_parts(b)] == [b"second"]  # one message at a time


def test_noblock_raises_again_with_nothing_there(pair: Any) -> None:
    _, b = pair
    with pytest.raises(zmq.Again):
        recv_parts(b, NOBLOCK)
    ctx = zmq.Context.instance()
    lonely = ctx.socket(zmq.PUSH)  # no peer: a non-blocking send cannot queue
    try:
        with pytest.raises(zmq.Again):
            send_parts(lonely, [b"x", b"y"], NOBLOCK)
    finally:
        lonely.close(linger=0)


class _CountingSocket(zmq.Socket):  # type: ignore[type-arg]
    """A subclass that changes ``send`` and ``recv``: the helpers must go through them."""

    sent: int = 0
    received: int = 0

    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False, **kw: Any) -> Any:
        type(self).sent += 1
        return super().send(data, flags=flags, copy=copy, track=track, **kw)

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        type(self).received += 1
        return super().recv(flags, copy=copy, track=track)


def test_a_subclass_that_changes_send_and_recv_is_called() -> None:
    _CountingSocket.sent = _CountingSocket.received = 0
    ctx = zmq.Context()
    a, b = _CountingSocket(ctx, zmq.PAIR), _CountingSocket(ctx, zmq.PAIR)
    try:
        b.bind("inproc://socket-parts")
        a.connect("inproc://socket-parts")
        send_parts(a, [b"1", b"2", b"3"])
        assert [bytes(f) for f in recv_parts(b)] == [b"1", b"2", b"3"]
        assert (_CountingSocket.sent, _CountingSocket.received) == (3, 3)
    finally:
        a.close(linger=0)
        b.close(linger=0)
        ctx.term()


def test_only_pyzmqs_own_blocking_sockets_take_the_compiled_methods() -> None:
    assert sockets._direct(zmq.Socket)
    assert not sockets._direct(zmq.asyncio.Socket)  # its send/recv return futures
    assert not sockets._direct(_CountingSocket)
