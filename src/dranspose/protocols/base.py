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

from dranspose.errors import ProtocolError

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
    nbytes: int = -1  # payload bytes of ``frames`` once counted (-1: not yet; set by the pairing)
    received_at: float = 0.0  # time.time() of the ingester's read that brought it (0: unknown; set by the ingester)


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


class SingleMessageCutter:
    """The cutter of every protocol whose upstream messages are single frames (albaem, PCAP,
    Sardana, contrast): checks the part count, then :meth:`units` classifies the frame.

    Subclasses set ``typ`` and implement :meth:`units` (the frame is forwarded unchanged
    unless the protocol splits it, as PCAP does). Stateless unless a subclass adds state.
    """

    typ: str = ""
    has_start: bool = True

    def reset(self) -> None:
        pass

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            raise ProtocolError(f"{self.typ} message has {len(parts)} parts, expected 1")
        return self.units(parts[0])

    def units(self, frame: Frame) -> list[Unit]:
        """The units one message makes (raises ProtocolError for a malformed one)."""
        raise NotImplementedError


def compat_module(module: str, *classes: type) -> None:
    """Name ``classes`` after their public compat module (``dranspose.data.<name>``, which
    re-exports them): pickles that hold packets, such as results, keep naming that path, so
    they load in old and new dranspose alike and match allow-lists written for it."""
    for cls in classes:
        cls.__module__ = module
