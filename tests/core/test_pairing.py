"""The ingester's pairing of queued units with assignments, and the frame check (hypothesis)."""

from __future__ import annotations

import array

import numpy as np
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.pairing import FrameCheck, StreamPairing, unit_bytes
from dranspose.protocols.base import Kind, Unit


def series(frames: list[int]) -> list[Unit]:
    return [Unit(Kind.START, [b"h"]), *(Unit(Kind.DATA, [b"%d" % f], frame_number=f) for f in frames), Unit(Kind.END, [b"e"])]


@settings(max_examples=300, deadline=None)
@given(
    junk=st.integers(0, 5),
    steps=st.lists(st.integers(1, 3), min_size=0, max_size=30),
    order=st.lists(st.booleans(), min_size=0, max_size=200),
)
def test_units_pair_with_routes_by_position(junk: int, steps: list[int], order: list[bool]) -> None:
    frames, f = [], 0
    for step in steps:
        f += step
        frames.append(f)
    units = [Unit(Kind.DATA, [b"junk"], frame_number=99) for _ in range(junk)] + series(frames)
    routes = [(e, (f"w{e % 3}",), e % 2 == 0) for e in range(len(frames) + 2)]
    p = StreamPairing(has_start=True)
    p.new_mapping(len(routes))
    out = []
    ui = ri = 0
    for take_unit in order + [True] * len(units) + [False] * len(routes):
        if take_unit and ui < len(units):
            p.add_unit(units[ui])
            ui += 1
        elif not take_unit and ri < len(routes):
            p.add_routes([routes[ri]])
            ri += 1
        out.extend(p.pairs())
    assert p.discarded == junk  # everything before the start is dropped
    assert [(x.event, x.workers, x.whole) for x in out] == routes  # positional, in order, each once
    assert [x.unit for x in out] == units[junk:]
    assert p.complete() and p.waiting_for_start  # the end unit waits for the next series
    gaps = sum(1 for a, b in zip(frames, frames[1:]) if b != a + 1)
    assert p.frames.gaps == gaps  # one count per gap, not per shifted frame
    assert sum(x.expected_frame is not None for x in out) == gaps


def test_new_mapping_keeps_a_queued_series_start() -> None:
    p = StreamPairing(has_start=True)
    p.new_mapping(-1)
    for u in series([0, 1]):
        p.add_unit(u)
    assert p.new_mapping(4) and len(p.units) == 4 and not p.waiting_for_start
    p.units.popleft()
    assert not p.new_mapping(4) and not p.units and p.waiting_for_start  # no start at the head


def test_streams_without_start_take_everything() -> None:
    p = StreamPairing(has_start=False)
    assert p.add_unit(Unit(Kind.DATA, [b"x"])) and p.wants_input(64) is False
    p.add_routes([(0, (), False)])
    assert [x.event for x in p.pairs()] == [0] and p.wants_input(64) is False
    p.add_routes([(1, ("w",), False)])
    assert p.wants_input(64) and not p.wants_input(0)


def test_frame_check() -> None:
    c = FrameCheck()
    assert [c.check(f) for f in (5, 6, 8, 9, 9)] == [None, None, 7, None, 10]
    c.reset()
    assert c.check(0) is None and c.gaps == 2


def test_reads_ahead_only_what_the_mapping_still_takes_bounded_in_bytes() -> None:
    p = StreamPairing(has_start=False, byte_limit=10_000)
    p.new_mapping(5)
    for i in range(3):
        assert p.wants_input(64)  # no routes yet: the scan still needs these frames
        p.add_unit(Unit(Kind.DATA, [b"x" * 100]))
    p.add_unit(Unit(Kind.DATA, [b"x" * 100]))
    p.add_unit(Unit(Kind.DATA, [b"x" * 100]))
    assert not p.wants_input(64)  # all 5 the mapping takes are here: the next series waits upstream
    q = StreamPairing(has_start=False, byte_limit=250)
    q.new_mapping(100)
    q.add_unit(Unit(Kind.DATA, [b"x" * 200]))
    assert q.wants_input(64)
    q.add_unit(Unit(Kind.DATA, [b"x" * 200]))
    assert not q.wants_input(64) and not q.wants_input(1)  # the byte bound holds whatever is due


def test_unit_bytes_of_every_frame_kind() -> None:
    frames = [b"abc", bytearray(b"de"), memoryview(b"fghi"), np.zeros((2, 3), dtype=np.uint16), zmq.Frame(b"jklmn")]
    assert unit_bytes(frames) == 3 + 2 + 4 + 12 + 5
    assert unit_bytes(frames) == 3 + 2 + 4 + 12 + 5  # the second time from the per-type rules
    other = [array.array("d", [1.0, 2.0]), 7, memoryview(b"abcdef")[1:3]]  # a plain buffer, an int
    assert unit_bytes(other) == 16 + 0 + 2 and unit_bytes(other) == 18


def test_queued_bytes_are_counted_once_per_unit() -> None:
    p = StreamPairing(has_start=False, byte_limit=10)
    units = [Unit(Kind.DATA, [zmq.Frame(b"x" * 4), b"yy"]) for _ in range(3)]
    for u in units:
        assert p.add_unit(u)
    assert [u.nbytes for u in units] == [6, 6, 6] and p.units_bytes == 18
    assert not p.wants_input(64)  # over the byte limit
    p.add_routes([(0, ("w",), False)])
    p.add_routes([(1, ("w",), False)])
    assert [x.unit.nbytes for x in p.pairs()] == [6, 6] and p.units_bytes == 6


def test_the_time_units_wait_with_no_route_adds_up_pass_by_pass() -> None:
    """From a pass that leaves units queued with no route to the next pass counts as waiting
    for assignments; passes with routes, or with nothing queued, add nothing."""
    p = StreamPairing(has_start=False)
    p.new_mapping(10)
    p.note_waiting(1.0)  # nothing queued
    p.add_unit(Unit(Kind.DATA, [b"x"]))
    p.note_waiting(2.0)  # queued, no route: waiting from here
    assert p.assignment_wait_s == 0.0
    p.note_waiting(2.5)
    assert p.assignment_wait_s == 0.5
    p.add_routes([(0, ("w0",), False)])
    p.note_waiting(3.0)  # the route came: the wait ended at this pass
    assert p.assignment_wait_s == 1.0
    assert [pair.event for pair in p.pairs()] == [0]
    p.note_waiting(4.0)  # nothing queued
    p.add_routes([(1, ("w0",), False)])
    p.add_unit(Unit(Kind.DATA, [b"y"]))
    p.note_waiting(5.0)  # queued with its route: not waiting for an assignment
    p.note_waiting(6.0)
    assert p.assignment_wait_s == 1.0
    p.new_mapping(10)  # a new map keeps the count (a counter over the process's life)
    assert p.assignment_wait_s == 1.0


def test_a_rerouted_event_is_no_longer_whole() -> None:
    """A worker died: the routes not used yet take the new workers, and those events lose
    ``whole`` (the new worker may hold other streams of them); the others keep theirs."""
    p = StreamPairing(has_start=False)
    p.add_routes([(0, ("w0",), True), (1, ("w1",), True), (2, ("w0",), True)])
    p.add_unit(Unit(Kind.DATA, [b"a"]))
    assert [(x.event, x.workers, x.whole) for x in p.pairs()] == [(0, ("w0",), True)]
    used = p.reroute({0: ("w1",), 2: ("w1",)})
    assert used == {0: ("w1",)}  # its frames went out already
    for f in (b"b", b"c"):
        p.add_unit(Unit(Kind.DATA, [f]))
    assert [(x.event, x.workers, x.whole) for x in p.pairs()] == [(1, ("w1",), True), (2, ("w1",), False)]
