"""A worker's result sends that never block its loop: a send the reducer cannot take now waits
in a queue bounded in bytes; the worker stops taking events while the queue is full and
reports a reducer that takes nothing for a while."""

from __future__ import annotations

import collections
import time
from typing import Any

import zmq

from dranspose.transport.sockets import NOBLOCK, send_parts


def message_bytes(frames: list[Any]) -> int:
    total = 0
    for f in frames:
        if isinstance(f, (bytes, bytearray, memoryview)):
            total += len(f) if not isinstance(f, memoryview) else f.nbytes
        elif hasattr(f, "nbytes"):
            total += int(f.nbytes)
        else:
            buf = getattr(f, "buffer", None)
            total += memoryview(buf).nbytes if buf is not None else 0
    return total


class ResultOutbox:
    """Non-blocking sends on ``sock`` with a byte-bounded backlog (FIFO: order is kept)."""

    def __init__(self, sock: "zmq.Socket[Any] | None", max_bytes: int) -> None:
        self.sock, self.max_bytes = sock, max_bytes
        self.queue: collections.deque[tuple[list[Any], int]] = collections.deque()
        self.nbytes = 0
        self.blocked_since: float | None = None  # first time a send could not go out

    def send(self, frames: list[Any]) -> None:
        """Send now if the reducer takes it, else queue it (never blocks)."""
        if not self.queue:
            try:
                if self.sock is None:  # no socket yet: wait like a reducer that takes nothing
                    raise zmq.Again()
                send_parts(self.sock, frames, NOBLOCK)
                return
            except zmq.Again:
                self.blocked_since = time.monotonic()
        size = message_bytes(frames)
        self.queue.append((frames, size))
        self.nbytes += size

    def flush(self) -> int:
        """Send what the reducer takes now; returns the number sent."""
        sent = 0
        while self.queue:
            frames, size = self.queue[0]
            if self.sock is None:
                return sent
            try:
                send_parts(self.sock, frames, NOBLOCK)
            except zmq.Again:
                return sent
            self.queue.popleft()
            self.nbytes -= size
            sent += 1
            self.blocked_since = time.monotonic()  # progress: the reducer takes results
        self.blocked_since = None
        return sent

    @property
    def full(self) -> bool:
        return self.nbytes >= self.max_bytes

    def stalled_for(self) -> float:
        """Seconds the oldest queued result has waited (0 when nothing waits)."""
        return 0.0 if self.blocked_since is None or not self.queue else time.monotonic() - self.blocked_since

    def __len__(self) -> int:
        return len(self.queue)
