"""Several small events per ZeroMQ message when they queue up (ingester -> worker, worker ->
reducer), one message per event otherwise: nothing waits for a batch to fill.

A batch is a multipart message whose first frame is ``{"batch": [header, ...], "packed":
[n, ...]}`` (the JSON headers of the single-message forms, :mod:`~dranspose.transport.framing`
and :mod:`~dranspose.transport.results`). ``packed`` lists, for every frame of every message
in order, its length in bytes when it was packed, or -1. Packed frames (up to
:data:`PACK_MAX` bytes) are concatenated into the second ZeroMQ frame; the others follow it,
each its own ZeroMQ frame, in order. One send of three frames instead of three per event is
what makes small events cheap (libzmq's cost is per frame). Without ``packed`` (an earlier
form) every message's frames follow the header frame as they are. A single message is sent
unchanged, so receivers that know only the single form (and senders from other versions)
keep working with one message per event.

:class:`Outbox` collects messages per destination during one pass of a service loop and
hands them out as batches when that pass ends, when ``max_events`` or ``max_bytes`` is
reached, or (``due``) when the oldest message waited ``max_delay_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, Sequence

from dranspose.backend import join_messages
from dranspose.errors import ProtocolError
from dranspose.transport.jsonio import loads_checked

MARK = b'{"batch":'
MAX_EVENTS = 64
MAX_BYTES = 256 << 10  # larger payloads gain nothing from sharing a message
MAX_DELAY_S = 0.002
MAX_BATCH = 4096  # headers a received batch may declare at most
PACK_MAX = 64 << 10  # frames up to this many bytes share the packed frame of a batch
#: Sockets that send batches copy frames below this size into libzmq instead of lending them.
#: A lent Python buffer (pyzmq's zero-copy above its 64 kB default) is released through
#: pyzmq's garbage-collector thread: a wake-up and a GIL hand-off per message, more than the
#: copy of a packed frame (at most MAX_BYTES + PACK_MAX) costs.
COPY_THRESHOLD = MAX_BYTES + PACK_MAX + 1


def _nbytes(frame: Any) -> int:
    if isinstance(frame, memoryview):
        return frame.nbytes
    try:
        return len(frame)
    except TypeError:
        return 0


def is_batch(first: Any) -> bool:
    raw = first.bytes if hasattr(first, "bytes") else first
    return bytes(raw[: len(MARK)]) == MARK


def join(messages: Sequence[list[Any]]) -> list[Any]:
    """One multipart message for ``messages`` (each ``[header_bytes, *frames]``): small frames
    are copied into one packed frame, larger ones are passed on as they are (not copied)."""
    if len(messages) == 1:
        return list(messages[0])
    return join_messages(messages if type(messages) is list else list(messages), PACK_MAX)


def _unpack(sizes: Any, parts: Sequence[Any], total: int) -> list[Any]:
    """The ``total`` frames of a packed batch: views into its packed frame, and the frames that
    follow it. Raises ValueError when the sizes do not describe the message exactly."""
    if not isinstance(sizes, list) or len(sizes) != total or len(parts) < 2:
        raise ValueError(f"packed lists {len(sizes) if isinstance(sizes, list) else sizes!r} sizes for {total} frames")
    blob = memoryview(parts[1])  # a zmq.Frame's view as .buffer gives it, without its weak reference
    rest = iter(parts[2:])
    out: list[Any] = []
    offset = 0
    for n in sizes:
        if type(n) is not int or n < -1 or n > PACK_MAX:
            raise ValueError(f"packed size {n!r}")
        if n < 0:
            frame = next(rest, None)
            if frame is None:
                raise ValueError("fewer frames than packed declares")
            out.append(frame)
        else:
            out.append(blob[offset : offset + n])
            offset += n
    if offset != blob.nbytes or next(rest, None) is not None:
        raise ValueError(f"packed sizes cover {offset} of {blob.nbytes} bytes, or frames are left over")
    return out


def _shown(first: Any) -> bytes:
    return bytes((first.bytes if hasattr(first, "bytes") else bytes(first))[:80])


def parse_batch(parts: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """A received batch (``is_batch(parts[0])``) as (its headers, every frame after the header
    frame in order): packed frames as read-only memoryviews into the received packed frame (no
    copy). The headers are parsed JSON, not checked: the caller checks each and that they
    declare exactly these frames. Raises ProtocolError."""
    raw = parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
    try:
        doc = loads_checked(raw)  # every number in it is checked by the caller or _unpack
        headers = doc["batch"]
        if not isinstance(headers, list) or not 1 <= len(headers) <= MAX_BATCH:
            raise ValueError("batch must be a list of 1..%d headers" % MAX_BATCH)
        if "packed" in doc:
            sizes = doc["packed"]
            frames = _unpack(sizes, parts, len(sizes) if isinstance(sizes, list) else -1)
        else:
            frames = list(parts[1:])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ProtocolError(f"bad batch header {raw[:80]!r}: {exc}") from None
    return headers, frames


def split_parsed(
    parts: Sequence[Any], frames_of: Callable[[dict[str, Any]], int]
) -> Iterator[tuple[dict[str, Any] | None, list[Any]]]:
    """The single messages inside a received batch as ``(header, [header_frame, *frames])``:
    a batch's headers are parsed once here (``header_frame`` is then ``b""``); a message that
    is not a batch comes back whole with ``header`` None (the receiver parses it). Packed
    frames come back as read-only memoryviews into the received packed frame (no copy).
    ``frames_of(header)`` says how many frames follow a header (raises on a bad header).
    Raises ProtocolError."""
    if not parts or not is_batch(parts[0]):
        yield None, list(parts)
        return
    headers, frames = parse_batch(parts)
    try:
        counts = [int(frames_of(h)) for h in headers]
        if any(c < 0 for c in counts):
            raise ValueError("negative frame count")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ProtocolError(f"bad batch header {_shown(parts[0])!r}: {exc}") from None
    if sum(counts) != len(frames):
        raise ProtocolError(f"batch declares {sum(counts)} frames, message has {len(frames)}")
    pos = 0
    for header, count in zip(headers, counts):
        yield header, [b"", *frames[pos : pos + count]]
        pos += count


def detach(frames: Sequence[Any]) -> list[Any]:
    """``frames`` with every view into a packed frame copied out (``bytes``), for frames the
    receiver keeps (result arrays): a kept view would keep the whole packed frame alive."""
    return [bytes(f) if isinstance(f, memoryview) else f for f in frames]


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

    def add(self, dest: Hashable, message: list[Any], now: float, nbytes: int | None = None) -> list[Any] | None:
        """Queue ``message`` for ``dest``; returns the joined batch when it is full.
        ``nbytes``: the payload bytes of ``message[1:]`` when the caller counted them already."""
        q = self.queues.get(dest)
        if q is None:
            q = self.queues[dest] = _Queue(since=now)
        elif not q.messages:
            q.since = now
        q.messages.append(message)
        q.nbytes += sum(_nbytes(f) for f in message[1:]) if nbytes is None else nbytes
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
