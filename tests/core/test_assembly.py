"""Worker-side event assembly: parts and assignments in any order, each event handed out once
when every announced stream is there, with the earliest ingester stamp as its time."""

from __future__ import annotations

import datetime

from dranspose.core.assembly import Assembler
from dranspose.event import StreamData


def _sd(name: str) -> dict[str, StreamData]:
    return {name: StreamData.model_construct(typ="STINS", frames=[name.encode()])}


def test_parts_and_assignment_in_any_order() -> None:
    a = Assembler()
    assert a.add(1, _sd("det"), "2026-12-04T10:00:00.000001Z") is None  # part before its assignment
    assert a.expect(1, frozenset({"det", "pcap"})) is None  # one stream still missing
    ev = a.add(1, _sd("pcap"), "2026-12-04T10:00:00.5Z")
    assert ev is not None and ev.event_number == 1 and set(ev.streams) == {"det", "pcap"}
    assert ev.created_at == datetime.datetime(2026, 12, 4, 10, 0, 0, 1, tzinfo=datetime.timezone.utc)  # the earliest
    assert a.outstanding() == [] and a.add(1, _sd("det")) is None  # handed out once; a late copy waits alone
    assert a.expect(2, frozenset({"det"})) is None
    ev2 = a.add(2, {**_sd("det"), **_sd("extra")})
    assert ev2 is not None and set(ev2.streams) == {"det"} and a.unexpected == 1 and ev2.created_at is None


def test_stamps_shared_by_a_burst_and_malformed_ones() -> None:
    a = Assembler()
    stamp = "2026-12-04T10:00:01.25Z"
    times = []
    for event in range(3):
        a.expect(event, frozenset({"det"}))
        ev = a.add(event, _sd("det"), "not a time" if event == 1 else stamp)
        assert ev is not None
        times.append(ev.created_at)
    want = datetime.datetime(2026, 12, 4, 10, 0, 1, 250000, tzinfo=datetime.timezone.utc)
    assert times == [want, None, want]  # a malformed stamp costs its timestamp only


def test_clear_returns_what_never_completed() -> None:
    a = Assembler()
    a.expect(5, frozenset({"det"}))
    a.expect(3, frozenset({"det"}))
    a.add(7, _sd("det"))
    assert a.clear() == [3, 5] and not a.partial and not a.created


def test_frames_before_their_assignment_are_counted_with_their_wait() -> None:
    a = Assembler()
    assert a.expect(1, frozenset({"det"}), now=10.0) is None  # announced first: no wait
    assert a.add(1, _sd("det"), now=10.5) is not None
    assert a.add(2, _sd("det"), now=11.0) is None  # came first: waits from 11.0 ...
    assert a.add(2, _sd("pcap"), now=11.2) is None  # ... a second part does not restart the wait
    assert a.add(3, _sd("det"), now=11.1) is None
    assert (a.assignment_waits, a.assignment_wait_s) == (0, 0.0)
    ev = a.expect(2, frozenset({"det", "pcap"}), now=11.25)
    assert ev is not None and set(ev.streams) == {"det", "pcap"}
    assert a.assignment_waits == 1 and abs(a.assignment_wait_s - 0.25) < 1e-12
    assert a.expect(3, frozenset({"det"}), now=11.6) is not None
    assert a.assignment_waits == 2 and abs(a.assignment_wait_s - 0.75) < 1e-12
    a.add(4, _sd("det"), now=12.0)
    assert a.clear() == [] and a.unannounced_since == {}  # a new mapping: its wait is not counted
    a.expect(4, frozenset({"det"}), now=13.0)
    assert a.assignment_waits == 2  # the counters are cumulative across mappings
    a.add(5, _sd("det"))  # without a clock nothing is timed
    a.expect(5, frozenset({"det"}))
    assert a.assignment_waits == 2 and a.unannounced_since == {}


def test_a_whole_part_completes_its_event_before_the_assignment() -> None:
    """A part its ingester calls whole is handed out at once; the assignment that follows is
    dropped (not announced again), and nothing counts as waiting for it."""
    a = Assembler()
    ev = a.add(7, _sd("det"), "2026-12-04T10:00:02Z", now=1.0, whole=True)
    assert ev is not None and ev.event_number == 7 and set(ev.streams) == {"det"}
    assert ev.created_at == datetime.datetime(2026, 12, 4, 10, 0, 2, tzinfo=datetime.timezone.utc)
    assert a.ahead == {7: None} and a.outstanding() == []
    assert a.expect(7, frozenset({"det"}), now=2.0) is None  # its assignment, late: dropped
    assert a.outstanding() == [] and not a.ahead and a.assignment_waits == 0
    assert a.add(8, _sd("det"), now=3.0) is None  # not whole: waits for its assignment as before
    assert a.expect(8, frozenset({"det"}), now=3.5) is not None and a.assignment_waits == 1


def test_a_whole_part_after_the_assignment_or_beside_other_parts_takes_the_usual_path() -> None:
    a = Assembler()
    assert a.expect(1, frozenset({"det", "pcap"})) is None  # announced with two streams
    assert a.add(1, _sd("det"), whole=True) is None  # a wrong claim cannot end it early: pcap is due
    ev = a.add(1, _sd("pcap"))
    assert ev is not None and set(ev.streams) == {"det", "pcap"} and not a.ahead
    assert a.add(2, _sd("pcap")) is None  # another part is here already
    assert a.add(2, _sd("det"), whole=True) is None and not a.ahead
    assert a.expect(2, frozenset({"det", "pcap"})) is not None


def test_events_ahead_of_their_assignment_are_bounded_and_cleared() -> None:
    from dranspose.core import assembly

    a = Assembler()
    for event in range(assembly.MAX_AHEAD + 10):
        assert a.add(event, _sd("det"), whole=True) is not None
    assert len(a.ahead) == assembly.MAX_AHEAD and 0 not in a.ahead and assembly.MAX_AHEAD + 9 in a.ahead  # oldest dropped
    a.clear()
    assert not a.ahead
