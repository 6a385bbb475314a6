"""The scan state machine: constraint stickiness, credits, failures (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.runs import FastRun
from dranspose.core.scan import Phase, Scan
from dranspose.core.triggermap import compile_mapping
from dranspose.transport.control import AssignmentBatch


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


# ---- the fast path (runs of simple events) and the general path mixed


def mixed_map(kinds: list[int], streams: int) -> dict[str, list[Any]]:
    """kind 0: constraint i%5 on every stream; 1: broadcast; 2: discard; 3: tag "gpu";
    4: no frame of stream 0; 5: two virtual workers."""
    out: dict[str, list[Any]] = {f"s{k}": [] for k in range(streams)}
    for i, kind in enumerate(kinds):
        for k in range(streams):
            if kind == 0:
                entry: Any = vw(i % 5)
            elif kind == 1:
                entry = vw(None)
            elif kind == 2:
                entry = []
            elif kind == 3:
                entry = [{"tags": ["gpu"], "constraint": i % 3}]
            elif kind == 4:
                entry = None if k == 0 else vw(i % 5)
            else:
                entry = vw(i % 5) + vw((i + 1) % 5)
            out[f"s{k}"].append(entry)
    return out


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4, 5]), min_size=1, max_size=60),
    streams=st.integers(1, 3),
    nworkers=st.integers(1, 5),
    capacity=st.integers(1, 6),
    window=st.integers(1, 64),
    seed=st.integers(0, 10_000),
    kill=st.booleans(),
)
def test_mixed_maps_every_event_accounted_in_order(
    kinds: list[int], streams: int, nworkers: int, capacity: int, window: int, seed: int, kill: bool
) -> None:
    cmap = compile_mapping(mixed_map(kinds, streams))
    scan = Scan(cmap, window=window)
    for i in range(nworkers):
        scan.add_worker(f"w{i}", ["generic", "gpu"] if i % 2 == 0 else ["generic"], capacity)
    rng = random.Random(seed)
    seen: list[int] = []
    owner: dict[Any, str] = {}
    dead: set[str] = set()
    steps = 0
    while scan.phase is Phase.RUNNING:
        for event, targets in scan.assign():
            seen.append(event)
            for stream, names in targets.items():
                assert not dead & set(names)
                for slot in cmap.events[event][stream]:
                    if slot.constraint is not None and names:
                        assert scan.bindings[slot.constraint] in names
        for key, name in scan.bindings.items():
            # sticky: a constraint stays on its worker while that worker lives
            prev = owner.get(key)
            assert prev is None or prev in dead or prev == name
            owner[key] = name
        for slot in scan.workers.values():
            assert slot.in_flight <= slot.capacity
        open_ = [(e, w) for e, ws in scan.open_events().items() for w in ws]
        if not open_:
            assert scan.phase is not Phase.RUNNING or scan.assign() == [] and scan.next_event < len(cmap)
            break
        e, w = rng.choice(open_)
        scan.worker_done(w, [e])
        steps += 1
        if kill and steps == 3 and len(scan.alive_workers()) > 1:
            victim = scan.alive_workers()[0].name
            dead.add(victim)
            lost = scan.remove_worker(victim)
            # failed now, or once the other workers it waits for are done with it
            assert all(e in scan.failed or e in scan.broken for e in lost)
    assert seen == list(range(len(seen)))  # strictly in order, each once
    if scan.phase is not Phase.RUNNING:
        assert scan.completed + len(scan.failed) == len(cmap)
        assert scan.progress()["in_flight"] == 0


def test_fast_run_spreads_new_constraints_and_respects_credits() -> None:
    scan = Scan(compile_mapping({"a": [vw(i) for i in range(100)], "b": [vw(i) for i in range(100)]}, all_wrap=False))
    for i in range(4):
        scan.add_worker(f"w{i}", ["generic"], 8)
    runs = scan.assign_runs()
    assert len(runs) == 1 and isinstance(runs[0], FastRun) and len(runs[0]) == 32
    counts = {n: 0 for n in scan.workers}
    for _e, targets in runs[0].expand():
        assert targets["a"] == targets["b"]
        counts[targets["a"][0]] += 1
    assert set(counts.values()) == {8}
    assert scan.held_back  # credits stopped it
    scan.worker_done("w2", list(range(32)))  # only w2's events close
    assert scan.workers["w2"].in_flight == 0 and scan.completed == 8
    more = scan.assign()
    assert [t["a"] for _e, t in more] == [("w2",)] * 8


def test_assignment_runs_round_trip_through_the_wire() -> None:
    from dranspose.transport import assignments

    scan = Scan(compile_mapping(mixed_map([0, 1, 0, 0, 2, 4, 0, 3, 0], 2)))
    for i in range(3):
        scan.add_worker(f"w{i}", ["generic", "gpu"], 50)
    runs = scan.assign_runs()
    assert any(isinstance(r, FastRun) for r in runs) and any(isinstance(r, list) for r in runs)
    expected = [a for r in runs for a in (r.expand() if isinstance(r, FastRun) else r)]
    decoded = [a for r in runs for a in assignments.decode(json.loads(assignments.encode("m", r)))]
    assert decoded == expected
    for name in scan.workers:
        mine = [(e, s) for r in runs for e, s in assignments.for_worker(json.loads(assignments.encode("m", r)), name)]
        want = [(e, frozenset(st for st, ws in t.items() if name in ws)) for e, t in expected]
        assert mine == [(e, s) for e, s in want if s]
    streams = sorted({name for _e, t in expected for name in t})
    for served in ([streams[0]], streams, [*streams, "not-in-the-map"]):
        routes: dict[str, list[Any]] = {}
        for r in runs:
            for stream, rs in assignments.for_streams(json.loads(assignments.encode("m", r)), served).items():
                routes.setdefault(stream, []).extend(rs)
        def alone(t: dict[str, tuple[str, ...]], stream: str) -> bool:  # its receivers get no other stream of the event
            return not any(w in ws for other, ws in t.items() if other != stream for w in t[stream])

        want_routes = {stream: [(e, t[stream], alone(t, stream)) for e, t in expected if stream in t] for stream in served}
        assert routes == {stream: rs for stream, rs in want_routes.items() if rs}
        single = AssignmentBatch("m", expected).for_streams(served)  # the single-event form agrees
        assert single == routes


@pytest.mark.parametrize(
    "bad",
    [{"first": 0, "workers": ["a"], "sets": [["s"]], "t": [1]}, {"first": "x"}, {"events": [[0, 5]]},
     {"first": 0, "workers": ["a"], "sets": [["s"]], "t": [0], "s": [0, 0]}],
)
def test_bad_assignment_batches_are_refused(bad: dict[str, Any]) -> None:
    from dranspose.errors import ProtocolError
    from dranspose.transport import assignments

    with pytest.raises(ProtocolError):
        list(assignments.decode(bad))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=1200))
def test_run_index_matches_numpy_unique(values: list[int]) -> None:
    import numpy as np

    from dranspose.transport import assignments

    arr = np.asarray(values, dtype=np.int64)
    used, inverse = np.unique(arr, return_inverse=True)
    index = inverse.reshape(-1).tolist() if len(used) > 1 else None  # one value: no list needed
    assert assignments._index(arr, 41) == (used.tolist(), index)
    assert assignments._index(arr, int(arr.max()) + 1) == (used.tolist(), index)  # the tightest bound
