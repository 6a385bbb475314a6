"""Several small events per ZeroMQ message when they queue up (ingester -> worker, worker ->
reducer), one message per event otherwise: nothing waits for a batch to fill.

A batch is a multipart message whose first frame is ``{"batch": [header, header, ...]}`` (the
JSON headers of the single-message forms, :mod:`~dranspose.transport.framing` and
:mod:`~dranspose.transport.results`), followed by the frames of each message in order. A
single message is sent unchanged, so receivers that know only the single form (and senders
from other versions) keep working with one message per event.

:class:`Outbox` collects messages per destination during one pass of a service loop and
hands them out as batches when that pass ends, when ``max_events`` or ``max_bytes`` is
reached, or (``due``) when the oldest message waited ``max_delay_s``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, Sequence

from dranspose.errors import ProtocolError

MARK = b'{"batch":'
MAX_EVENTS = 64
MAX_BYTES = 256 << 10  # larger payloads gain nothing from sharing a message
MAX_DELAY_S = 0.002
MAX_BATCH = 4096  # headers a received batch may declare at most


def _nbytes(frame: Any) -> int:
    try:
        return len(frame)
    except TypeError:
        return 0


def is_batch(first: Any) -> bool:
    raw = first.bytes if hasattr(first, "bytes") else first
    return bytes(raw[: len(MARK)]) == MARK


def join(messages: Sequence[list[Any]]) -> list[Any]:
    """One multipart message for ``messages`` (each ``[header_bytes, *frames]``)."""
    if len(messages) == 1:
        return list(messages[0])
    headers = b",".join(bytes(m[0]) for m in messages)
    out: list[Any] = [MARK + b"[" + headers + b"]}"]
    for m in messages:
        out.extend(m[1:])
    return out


def split(parts: Sequence[Any], frames_of: Callable[[dict[str, Any]], int]) -> Iterator[list[Any]]:
    """The single messages inside a received batch (``[header_bytes, *frames]`` each);
    ``frames_of(header)`` says how many frames follow a header (raises on a bad header).
    A message that is not a batch is returned as it is. Raises ProtocolError."""
    if not parts or not is_batch(parts[0]):
        yield list(parts)
        return
    raw = parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
    try:
        headers = json.loads(raw)["batch"]
        if not isinstance(headers, list) or not 1 <= len(headers) <= MAX_BATCH:
            raise ValueError("batch must be a list of 1..%d headers" % MAX_BATCH)
        counts = [int(frames_of(h)) for h in headers]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"bad batch header {raw[:80]!r}: {exc}") from None
    if any(c < 0 for c in counts) or sum(counts) != len(parts) - 1:
        raise ProtocolError(f"batch declares {sum(counts)} frames, message has {len(parts) - 1}")
    pos = 1
    for header, count in zip(headers, counts):
        yield [json.dumps(header, separators=(",", ":")).encode(), *parts[pos : pos + count]]
        pos += count


@dataclass
class _Queue:
    messages: list[list[Any]] = field(default_factory=list)
    nbytes: int = 0
    since: float = 0.0


@dataclass
class Outbox:
    """Messages waiting per destination; ``add`` returns a batch when one is full."""

    max_events: int = MAX_EVENTS
    max_bytes: int = MAX_BYTES
    max_delay_s: float = MAX_DELAY_S
    queues: dict[Hashable, _Queue] = field(default_factory=dict)

    def add(self, dest: Hashable, message: list[Any], now: float) -> list[Any] | None:
        """Queue ``message`` for ``dest``; returns the joined batch when it is full."""
        q = self.queues.get(dest)
        if q is None:
            q = self.queues[dest] = _Queue(since=now)
        elif not q.messages:
            q.since = now
        q.messages.append(message)
        q.nbytes += sum(_nbytes(f) for f in message[1:])
        if len(q.messages) >= self.max_events or q.nbytes >= self.max_bytes:
            return self._take(q)
        return None

    def _take(self, q: _Queue) -> list[Any]:
        out = join(q.messages)
        q.messages, q.nbytes = [], 0
        return out

    def pending(self) -> int:
        return sum(len(q.messages) for q in self.queues.values())

    def due(self, now: float) -> bool:
        """Has a message waited ``max_delay_s``?"""
        return any(q.messages and now - q.since >= self.max_delay_s for q in self.queues.values())

    def drain(self) -> Iterator[tuple[Hashable, list[Any], int]]:
        """Every waiting batch as (destination, message, number of events)."""
        for dest, q in self.queues.items():
            if q.messages:
                n = len(q.messages)
                yield dest, self._take(q), n
