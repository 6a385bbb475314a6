"""The scan state machine: constraint stickiness, credits, failures (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.scan import Phase, Scan
from dranspose.core.triggermap import compile_mapping


def vw(c: int | None) -> list[dict[str, Any]]:
    return [{"tags": ["generic"], "constraint": c}]


def drain(scan: Scan, rng: random.Random, kill_at: int | None = None, victim: str | None = None) -> dict[int, set[str]]:
    """Run the scan to the end, completing in-flight events in random order."""
    targets: dict[int, set[str]] = {}
    steps = 0
    while scan.phase is Phase.RUNNING:
        for event, t in scan.assign():
            targets[event] = {w for ws in t.values() for w in ws}
            for w in targets[event]:
                assert scan.workers[w].in_flight <= scan.workers[w].capacity
        pending = [(e, w) for e, ws in scan.open_events().items() for w in ws]
        if not pending:
            continue
        e, w = rng.choice(pending)
        scan.worker_done(w, [e])
        steps += 1
        if kill_at is not None and steps == kill_at and victim:
            scan.remove_worker(victim)
    return targets


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 40),
    nworkers=st.integers(1, 4),
    nconstraints=st.integers(1, 6),
    capacity=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_every_event_done_constraints_sticky(n: int, nworkers: int, nconstraints: int, capacity: int, seed: int) -> None:
    scan = Scan(compile_mapping({"a": [vw(i % nconstraints) for i in range(n)]}))
    for i in range(nworkers):
        scan.add_worker(f"w{i}", ["generic"], capacity)
    targets = drain(scan, random.Random(seed))
    assert scan.phase is Phase.FINISHING
    assert scan.completed == n + 2 and not scan.failed
    assert targets[0] == targets[n + 1] == {f"w{i}" for i in range(nworkers)}  # start/end broadcast
    owner: dict[int, set[str]] = {}
    for i in range(n):
        owner.setdefault(i % nconstraints, set()).update(targets[i + 1])
    assert all(len(ws) == 1 for ws in owner.values())


@settings(max_examples=100, deadline=None)
@given(n=st.integers(5, 40), seed=st.integers(0, 1000), kill_at=st.integers(1, 30))
def test_dead_worker_events_fail_and_scan_finishes(n: int, seed: int, kill_at: int) -> None:
    scan = Scan(compile_mapping({"a": [vw(i % 3) for i in range(n)]}))
    for i in range(3):
        scan.add_worker(f"w{i}", ["generic"], 4)
    drain(scan, random.Random(seed), kill_at=kill_at, victim="w1")
    assert scan.phase is Phase.FINISHING
    assert scan.completed + len(scan.failed) == n + 2  # nothing lost silently
    for slot in scan.alive_workers():  # w1 only if it was killed before the scan ended
        scan.worker_finished(slot.name, 0)
    assert scan.phase is Phase.REDUCING
    assert scan.ready_for_reducer_finish()
    scan.reducer_progress({}, finished=True)
    assert scan.phase is Phase.FINISHED
    assert scan.progress()["finished"] is True


def test_credit_limit_stalls_assignment_in_order() -> None:
    scan = Scan(compile_mapping({"a": [vw(0) for _ in range(10)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 3)
    assert [e for e, _ in scan.assign()] == [0, 1, 2]
    assert scan.assign() == []
    scan.worker_done("w0", [1])
    assert [e for e, _ in scan.assign()] == [3]


def test_worker_joining_gets_new_constraints() -> None:
    scan = Scan(compile_mapping({"a": [vw(i) for i in range(6)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 2)
    first = scan.assign()
    assert [t["a"] for _, t in first] == [("w0",), ("w0",)]
    scan.add_worker("w1", ["generic"], 2)
    more = scan.assign()
    assert [t["a"] for _, t in more] == [("w1",), ("w1",)]


def test_results_must_be_processed_before_reducer_finish() -> None:
    scan = Scan(compile_mapping({"a": [vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 2)
    scan.assign()
    scan.worker_done("w0", [0], results_sent=1)
    scan.worker_finished("w0", 1)
    assert scan.phase is Phase.REDUCING and not scan.ready_for_reducer_finish()
    scan.reducer_progress({"w0": 1})
    assert scan.ready_for_reducer_finish()


def test_stop_cancels_unassigned() -> None:
    scan = Scan(compile_mapping({"a": [vw(0) for _ in range(10)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 2)
    scan.assign()
    scan.stop()
    scan.cancel_pending("w0", [0, 1])
    assert scan.phase is Phase.FINISHING
    assert scan.progress()["cancelled_events"] == 10


def test_undeliverable_pairs_fail_without_hanging() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(1)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 4)
    scan.add_worker("w1", ["generic"], 4)
    assigned = dict(scan.assign())
    victim = assigned[0]["a"][0]
    scan.undeliverable([(victim, 0)])
    other = assigned[1]["a"][0]
    scan.worker_done(other, [1])
    assert scan.phase is Phase.FINISHING
    assert scan.failed == {0} and scan.completed == 1
    assert scan.workers[victim].in_flight == 0
