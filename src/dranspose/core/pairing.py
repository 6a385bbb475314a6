"""The ingester's decisions for one stream (pure, no I/O): which queued unit goes with which
assignment, and the one frame-number check.

Units (the frames of one event, cut from the upstream stream) and routes (``(event,
workers, whole)`` from the assignment batches that mention the stream) queue separately and are
paired strictly by position (COMPAT §3: the n-th unit of a stream is the n-th event that
mentions it). Before a series starts (protocols with start messages) everything but a start
unit is discarded; an end unit makes the stream wait for the next start.

:class:`FrameCheck` flags a frame number that does not follow the previous one (a dropped or
repeated detector frame): routing stays positional, the gap is counted and reported once.

A stream *rejoining* a running scan (the ingester restarted) aligns by frame number: the routes
of frames that went by meanwhile are skipped (their parts are lost, in :attr:`StreamPairing.lost`).
A worker's death re-routes the routes not used yet (:meth:`StreamPairing.reroute`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from dranspose.protocols.base import Kind, Unit

# (event number, worker names (empty: discard), whole: this stream is all that each of them gets of the event)
Route = tuple[int, tuple[str, ...], bool]


_BY_LEN, _BY_NBYTES, _BY_VIEW, _NOTHING = 0, 1, 2, 3
# how each frame type tells its size, found once per type (a failed ``hasattr`` raises and
# catches an AttributeError inside: twice per zmq.Frame it was a tenth of the ingester)
_SIZE_RULE: dict[type, int] = {bytes: _BY_LEN, bytearray: _BY_LEN, memoryview: _BY_NBYTES}


def _size_rule(t: type) -> int:
    if hasattr(t, "nbytes"):  # memoryview, numpy
        rule = _BY_NBYTES
    elif hasattr(t, "buffer"):  # zmq.Frame: len() is its size in bytes
        rule = _BY_LEN
    elif issubclass(t, int):
        rule = _NOTHING
    else:
        rule = _BY_VIEW
    if len(_SIZE_RULE) < 64:  # frame types are a handful; never grows without bound
        _SIZE_RULE[t] = rule
    return rule


def unit_bytes(frames: list[Any]) -> int:
    """The payload size of a unit's frames (without making a view of each: this runs for
    every frame in the ingester). Attributes are looked up on the type, once per type: an
    instance lookup of a missing attribute on a ``zmq.Frame`` goes through pyzmq's option
    ``__getattr__``."""
    total = 0
    rules = _SIZE_RULE
    for f in frames:
        t = type(f)
        rule = rules.get(t)
        if rule is None:
            rule = _size_rule(t)
        if rule == _BY_LEN:
            total += len(f)
        elif rule == _BY_NBYTES:
            total += f.nbytes
        elif rule == _BY_VIEW:
            total += memoryview(f).nbytes
    return total


@dataclass
class FrameCheck:
    """Frame numbers must count up by one within a series."""

    expected: int | None = None
    gaps: int = 0

    def reset(self) -> None:
        """A new series: the next frame number sets the count."""
        self.expected = None

    def check(self, frame: int) -> int | None:
        """Record ``frame``; returns the expected number when it is not that (a gap)."""
        expected = self.expected
        self.expected = frame + 1
        if expected is not None and frame != expected:
            self.gaps += 1
            return expected
        return None


@dataclass
class Pair:
    """A unit with its route; ``expected_frame`` is set when the frame check found a gap;
    ``whole``: the unit is all that each of ``workers`` gets of the event."""

    event: int
    workers: tuple[str, ...]
    unit: Unit
    expected_frame: int | None = None
    whole: bool = False


@dataclass
class StreamPairing:
    """Units and routes of one stream and their pairing."""

    has_start: bool
    units: collections.deque[Unit] = field(default_factory=collections.deque)
    routes: collections.deque[Route] = field(default_factory=collections.deque)
    waiting_for_start: bool = True
    units_due: int = -1  # units the current mapping takes from this stream (-1: unknown)
    units_taken: int = 0
    discarded: int = 0  # units dropped before a start
    frames: FrameCheck = field(default_factory=FrameCheck)
    byte_limit: int = 1 << 62  # read no more upstream while this many payload bytes are queued
    units_bytes: int = 0  # payload bytes queued in ``units``
    rejoining: bool = False  # restarted mid-scan: align routes with the first frame number seen
    lost: list[tuple[str, int]] = field(default_factory=list)  # (worker, event) skipped while rejoining
    skipped: list[int] = field(default_factory=list)  # events skipped by the last alignment
    rejoined_at: int | None = None  # frame number the stream rejoined at (until read)
    assignment_wait_s: float = 0.0  # seconds read units waited with no route to pair them with (all mappings)
    _waiting_since: float | None = None  # the last pass, when it left units waiting for routes

    def __post_init__(self) -> None:
        self.waiting_for_start = self.has_start

    def new_mapping(self, units_due: int) -> bool:
        """A new trigger map: routes are dropped; queued units are kept only when they begin
        with a start unit (the series this mapping consumes). Returns whether they were kept
        (if not, the caller resets its cutter)."""
        self.units_due, self.units_taken = units_due, 0
        self.routes.clear()
        self.rejoining = False
        keep = self.has_start and bool(self.units) and self.units[0].kind is Kind.START
        if not keep:
            self.units.clear()
            self.units_bytes = 0
        self.waiting_for_start = self.has_start and not keep
        self.frames.reset()
        return keep

    def add_unit(self, unit: Unit) -> bool:
        """Queue a unit cut from upstream; False when it was discarded (before a start)."""
        if self.waiting_for_start:
            rejoin = self.rejoining and unit.kind is Kind.DATA and unit.frame_number is not None
            if unit.kind is not Kind.START and not rejoin:
                self.discarded += 1
                return False
            self.waiting_for_start = False
        unit.nbytes = unit_bytes(unit.frames)  # counted once: the ingester's outbox reads it too
        self.units.append(unit)
        self.units_bytes += unit.nbytes
        return True

    def add_routes(self, routes: Iterable[Route]) -> None:
        """Several routes, in event order (one assignment batch)."""
        self.routes.extend(routes)

    def wants_input(self, limit: int) -> bool:
        """Read upstream while fewer than ``limit`` units and ``byte_limit`` bytes are queued,
        and only what is wanted: units for pending routes, units the current mapping still
        takes (read ahead of its assignments, so frames wait here, bounded in bytes, rather
        than in the socket), or one message to discard before a start."""
        if len(self.units) >= limit or self.units_bytes >= self.byte_limit:
            return False
        if self.routes or (self.waiting_for_start and not self.units):
            return True
        return self.units_due >= 0 and self.units_taken + len(self.units) < self.units_due

    def reroute(self, new: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
        """A worker died: routes not used yet take their new workers; returns the entries
        of ``new`` whose route was used already (the frames went out). A re-routed event is no
        longer ``whole`` (its new worker may hold other streams of it)."""
        remaining = dict(new)
        self.routes = collections.deque(
            (event, remaining.pop(event), False) if event in remaining else (event, workers, whole)
            for event, workers, whole in self.routes
        )
        return remaining

    def _align(self) -> bool:
        """Rejoining: skip the routes of frames that went by (their parts go to ``lost``).
        False: wait for more routes."""
        unit = self.units[0]
        if unit.kind is not Kind.DATA or unit.frame_number is None:
            self.rejoining = False  # a new series, or no frame numbers: positional as usual
            return True
        target = unit.frame_number + (1 if self.has_start else 0)
        while self.units_taken < target and self.routes:
            event, workers, _whole = self.routes.popleft()
            self.units_taken += 1
            self.lost.extend((w, event) for w in workers)
            self.skipped.append(event)
        if self.units_taken < target:
            return False
        self.rejoining = False
        self.frames.expected = unit.frame_number
        self.rejoined_at = unit.frame_number
        return True

    def pairs(self) -> Iterator[Pair]:
        """Pop every unit that has its route, in order."""
        while self.units and self.routes:
            if self.rejoining and not self._align():
                break
            if not self.routes:
                break
            unit = self.units.popleft()
            self.units_bytes -= unit.nbytes  # set by add_unit, the only way into the queue
            event, workers, whole = self.routes.popleft()
            self.units_taken += 1
            expected = None
            if unit.kind is Kind.START:
                self.frames.reset()
            elif unit.kind is Kind.DATA and unit.frame_number is not None:
                expected = self.frames.check(unit.frame_number)
            if unit.kind is Kind.END and self.has_start:
                self.waiting_for_start = True
            yield Pair(event, workers, unit, expected, whole)

    def note_waiting(self, now: float) -> None:
        """Call after each pairing pass with a monotonic clock: while units are queued and no
        route is there for them, the stream waits for the controller's assignments (flow
        control holds what was read). The time from a pass that left the stream waiting to the
        next pass is added to ``assignment_wait_s``, one float that another thread may read at
        any time (it only grows; it lags by at most one pass)."""
        if self._waiting_since is not None:
            self.assignment_wait_s += now - self._waiting_since
        self._waiting_since = now if self.units and not self.routes else None

    def complete(self) -> bool:
        """Every unit the mapping takes from this stream was paired (False when unknown)."""
        return self.units_due >= 0 and self.units_taken == self.units_due
