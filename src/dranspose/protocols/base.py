"""The contract between a wire protocol and the ingester framework.

An ingester owns a socket; a :class:`StreamCutter` owns the protocol knowledge. The ingester
hands every received multipart message to ``cutter.feed(parts)`` and gets back the *units* it
contains, in order: one unit = the frames of this stream for one event. The ingester then
numbers units positionally (the n-th unit of a stream goes to the n-th event that mentions the
stream) and routes them.

Buffer ownership: ``parts`` are the frames as received (``zmq.Frame`` with ``copy=False`` or
``bytes``). A cutter should put them into units unchanged (zero-copy); it may build new
``bytes`` when a protocol needs a message split (e.g. one event per PandA sample).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union

import zmq

Frame = Union[zmq.Frame, bytes, memoryview]


class Kind(enum.Enum):
    START = "start"  # header of a series: event 0, broadcast
    DATA = "data"  # one image / sample: events 1..N
    END = "end"  # end of series: event N+1, broadcast


@dataclass(slots=True)
class Unit:
    """The frames of one stream for one event, as the cutter found them in the stream."""

    kind: Kind
    frames: list[Frame]
    frame_number: int | None = None  # the protocol's own counter, for gap/mismatch checks
    meta: dict[str, object] = field(default_factory=dict)


class StreamCutter(Protocol):
    """Cuts one upstream stream into units. One instance per stream per scan (may keep state).

    ``feed`` raises :class:`dranspose.errors.ProtocolError` for a malformed message; the
    ingester counts and logs it and goes on with the next message.
    ``has_start`` is False for protocols without start/end messages (the generic ZMQ ingester):
    then every message is DATA and nothing is discarded.
    """

    typ: str
    has_start: bool

    def feed(self, parts: Sequence[Frame]) -> list[Unit]: ...

    def reset(self) -> None:
        """Forget any partial state (called when a new trigger map starts)."""
        ...


class PassThroughCutter:
    """Every upstream message is one DATA unit, forwarded unchanged (generic ZMQ ingesters)."""

    has_start = False

    def __init__(self, typ: str = "raw") -> None:
        self.typ = typ

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        return [Unit(Kind.DATA, list(parts))]

    def reset(self) -> None:
        pass
