"""Test helpers: read raw captures, stream messages over real ZeroMQ sockets, cut them."""

from __future__ import annotations

import gzip
import io
import socket
import threading
from typing import Any, Iterable, Sequence

import cbor2
import zmq

from dranspose.protocols.base import Unit
from tests.paths import DATA



CAPTURES = DATA


def read_capture(name: str) -> list[list[bytes]]:
    """A raw capture: a concatenation of untagged CBOR arrays of byte strings (one per message).

    Uses only ``CBORDecoder.decode()``, which behaves the same in cbor2 5.x and 6.x (no tags here).
    """
    path = CAPTURES / name
    raw = path.read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    fp = io.BytesIO(raw)
    decoder = cbor2.CBORDecoder(fp)
    messages: list[list[bytes]] = []
    while fp.tell() < len(raw):
        item = decoder.decode()
        assert isinstance(item, list) and all(isinstance(p, bytes) for p in item)
        messages.append(item)
    return messages


def stream_over_zmq(messages: Sequence[Sequence[bytes]], pattern: str, timeout_s: float = 10.0) -> list[list[zmq.Frame]]:
    """Send ``messages`` over a real loopback socket pair and return what the receiver got.

    ``pattern`` is the receiving socket type: ``"PULL"`` (PUSH binds) or ``"SUB"`` (an XPUB binds,
    a PUB that tells us when the subscription has arrived, so nothing is lost to the slow-joiner
    race). Received frames are ``zmq.Frame`` (``copy=False``), as an ingester gets them.
    """
    ctx = zmq.Context.instance()
    send_type, recv_type = {"PULL": (zmq.PUSH, zmq.PULL), "SUB": (zmq.XPUB, zmq.SUB)}[pattern]
    sender = ctx.socket(send_type)
    receiver = ctx.socket(recv_type)
    try:
        sender.setsockopt(zmq.LINGER, 0)
        receiver.setsockopt(zmq.LINGER, 0)
        sender.setsockopt(zmq.SNDHWM, 100000)
        receiver.setsockopt(zmq.RCVHWM, 100000)
        port = sender.bind_to_random_port("tcp://127.0.0.1")
        if recv_type == zmq.SUB:
            receiver.setsockopt(zmq.SUBSCRIBE, b"")
        receiver.connect(f"tcp://127.0.0.1:{port}")
        if send_type == zmq.XPUB:
            assert sender.poll(int(timeout_s * 1000)), "subscription never arrived"
            assert sender.recv() == b"\x01"
        received: list[list[zmq.Frame]] = []

        def send_all() -> None:
            for msg in messages:
                sender.send_multipart(list(msg), copy=len(msg) and max(len(p) for p in msg) < 4096)

        thread = threading.Thread(target=send_all)
        thread.start()
        for _ in messages:
            assert receiver.poll(int(timeout_s * 1000)), f"timed out after {len(received)} messages"
            received.append(receiver.recv_multipart(copy=False))
        thread.join(timeout_s)
        return received
    finally:
        receiver.close(0)
        sender.close(0)


def cut(cutter: Any, messages: Iterable[Sequence[Any]]) -> list[Unit]:
    units: list[Unit] = []
    for msg in messages:
        units.extend(cutter.feed(msg))
    return units


def kinds(units: Sequence[Unit]) -> list[str]:
    return [u.kind.name for u in units]


class TcpServer:
    """A one-connection TCP server on a random loopback port that plays a PandA data port:
    reads the options line, then sends ``payload`` in ``chunk``-byte writes and closes."""

    def __init__(self, payload: bytes, chunk: int = 97) -> None:
        self.payload = payload
        self.chunk = chunk
        self.options = b""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self._sock.settimeout(10)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(10)
            while not self.options.endswith(b"\n"):
                data = conn.recv(1)
                if not data:
                    return
                self.options += data
            for i in range(0, len(self.payload), self.chunk):
                conn.sendall(self.payload[i : i + self.chunk])
        self._sock.close()

    def join(self) -> None:
        self._thread.join(10)
