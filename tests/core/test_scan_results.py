"""Results of fast-path events are settled in bulk (``wait`` / ``early`` arrays) instead of
through the per-event bookkeeping. The same random history, replayed on a scan whose events
all take the general path, must give the same counts at every step: completions, failures,
results awaited, phase, in flight, including duplicates, early confirmations, a dead worker,
a reducer restart and results given up."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.scan import Phase, Scan
from dranspose.core.triggermap import compile_mapping

KEYS = ("completed_events", "failed_events", "failed", "awaiting_results", "phase", "in_flight", "cancelled_events")


def make(n: int, nworkers: int, general: bool) -> Scan:
    scan = Scan(compile_mapping({"a": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}))
    if general:
        scan._t.simple[:] = -1  # every event through the per-event bookkeeping
    for i in range(nworkers):
        scan.add_worker(f"w{i}", ["generic"], 4)
    return scan


def report(worker: str, events: list[int], with_result: set[int]) -> tuple[str, list[int], None, list[int]]:
    """A completion report as decoded: when every event sent a result (``"res": "all"``) the
    results are the very list of the events."""
    done = list(events)
    results = [x for x in done if x in with_result]
    return worker, done, None, done if results == done else results


def view(scan: Scan) -> dict[str, Any]:
    p = scan.progress()
    return {**{k: p[k] for k in KEYS}, "per_worker": {n: (w.in_flight, w.capacity, w.alive) for n, w in scan.workers.items()}}


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 30), nworkers=st.integers(1, 10), seed=st.integers(0, 10_000), fault=st.sampled_from(
    ["none", "kill", "remove", "restart", "expire", "stalled", "abandon"]))
def test_fast_results_settle_as_the_general_path_does(n: int, nworkers: int, seed: int, fault: str) -> None:
    fast, slow = make(n, nworkers, False), make(n, nworkers, True)
    rng = random.Random(seed)
    done: dict[str, list[int]] = {}  # events a worker finished, for its next report
    with_result: set[int] = set()
    unconfirmed: list[tuple[str, int]] = []
    faulted = False
    for step in range(400):
        a = fast.assign()
        slow._t.bound[:] = fast._t.bound  # the paths spread new constraints by different rules
        assert a == slow.assign()
        open_events = sorted((e, w) for e, ws in fast.open_events().items() for w in ws)
        assert open_events == sorted((e, w) for e, ws in slow.open_events().items() for w in ws)
        action = rng.random()
        held = {(w, e) for w, evs in done.items() for e in evs}
        todo = [(e, w) for e, w in open_events if (w, e) not in held]  # a worker processes an event once
        if todo and action < 0.5:  # a worker finishes some events and reports them
            e, w = rng.choice(todo)
            done.setdefault(w, []).append(e)
            if rng.random() < 0.8:
                with_result.add(e)
                unconfirmed.append((w, e))
            if rng.random() < 0.5:  # one or several reports, read together by the controller
                batch_reports = []
                for who in [w, *rng.sample(sorted(done), k=min(len(done), rng.randint(0, 2)))]:
                    if who in done:
                        batch_reports.append(report(who, done.pop(who), with_result))
                if batch_reports and rng.random() < 0.1:  # a report again (resent after a Redis restart)
                    batch_reports.append(batch_reports[0])
                fast.workers_done(batch_reports)
                for who, evs, sent, res in batch_reports:
                    slow.worker_done(who, list(evs), sent, list(res))
        elif unconfirmed and action < 0.8:  # the reducer confirms some results (maybe early)
            rng.shuffle(unconfirmed)
            k = rng.randint(1, len(unconfirmed))
            batch, unconfirmed = unconfirmed[:k], unconfirmed[k:]
            if rng.random() < 0.1:
                batch = batch + batch[:1]  # a confirmation twice
            received: Any = list(batch)
            if rng.random() < 0.5:  # as the reducer sends them: by worker
                received = {}
                for w, e in batch:
                    received.setdefault(w, []).append(e)
            for s in (fast, slow):
                s.reducer_progress({}, False, "r1", received)
        elif not faulted and step > 20 and fault != "none" and action < 0.85:
            faulted = True
            victim = f"w{rng.randrange(nworkers)}"
            if fault == "kill":
                assert fast.reroute_worker(victim) == slow.reroute_worker(victim)
                done.pop(victim, None)
            elif fault == "remove":
                assert fast.remove_worker(victim) == slow.remove_worker(victim)
                done.pop(victim, None)
            elif fault == "restart":
                for s in (fast, slow):
                    s.reducer_progress({}, False, "r2", [])
                unconfirmed = []
            elif fault == "expire":
                assert fast.expire_results() == slow.expire_results()
            elif fault == "stalled":
                assert fast.fail_stalled("test") == slow.fail_stalled("test")
            else:
                for s in (fast, slow):
                    s.abandon("test")
        else:  # workers flush what they hold
            flushed = [report(w, evs, with_result) for w, evs in done.items()]
            fast.workers_done(flushed)
            for w, evs, sent, res in flushed:
                slow.worker_done(w, evs, sent, res)
            done = {}
        assert view(fast) == view(slow), (step, fault)
        if fast.phase is Phase.FINISHED:
            break
    # every event accounted once all is delivered
    for w, evs in done.items():
        res = [x for x in evs if x in with_result]
        for s in (fast, slow):
            s.worker_done(w, list(evs), None, res)
    for s in (fast, slow):
        s.reducer_progress({}, False, s.reducer_instance or "r1", list(unconfirmed))
    assert view(fast) == view(slow)


def test_fast_results_stay_off_the_per_event_dicts() -> None:
    scan = make(1000, 2, False)
    scan.workers["w0"].capacity = scan.workers["w1"].capacity = 2000
    while scan.next_event < 1002:
        scan.assign()
    for w in ("w0", "w1"):
        mine = [e for e, ws in scan.open_events().items() if w in ws and e not in (0, 1001)]
        scan.worker_done(w, mine, None, mine)
    assert scan.awaiting_count() == 1000 and not scan.awaiting_pairs and len(scan.pending) <= 2
    scan.reducer_progress({}, False, "r1", [("w0" if w == 0 else "w1", int(e)) for e, w in
                                           zip(np.flatnonzero(scan._t.wait >= 0), scan._t.wait[scan._t.wait >= 0])])
    assert scan.awaiting_count() == 0 and scan.reduced_count() == 1000


def test_general_path_event_of_a_dead_worker_is_rerouted_not_counted_done() -> None:
    """An event that needs two workers (two virtual workers) loses one: its part goes to a
    live worker; it completes only when that one reports it."""
    two = [{"tags": ["generic"], "constraint": 1}, {"tags": ["generic"], "constraint": 2}]
    scan = Scan(compile_mapping({"a": [two]}, all_wrap=False))
    for i in range(3):
        scan.add_worker(f"w{i}", ["generic"], 4)
    [(event, targets)] = scan.assign()
    first, second = targets["a"]
    reroutes, failed = scan.reroute_worker(second)
    assert not failed and len(reroutes) == 1
    (_e, _new, (added,)) = reroutes[0]
    assert added not in (first, second)
    scan.worker_done(first, [event])
    assert scan.completed == 0  # the re-routed part is still owed
    scan.worker_done(added, [event])
    assert scan.completed == 1 and not scan.failed


def test_reports_read_together_with_odd_numbers_change_nothing_they_should_not() -> None:
    fast, slow = make(10, 2, False), make(10, 2, True)
    a = fast.assign()
    slow._t.bound[:] = fast._t.bound
    assert a == slow.assign()
    w0 = [e for e, ws in fast.open_events().items() if ws == {"w0"}]
    odd = [("ghost", [1, 2], 3, [1, 2]), ("w0", [-1, 10**12, 999], 1, [10**12, -5]), ("w0", w0, 7, w0)]
    fast.workers_done(odd)
    for name, evs, sent, res in odd:
        slow.worker_done(name, evs, sent, res)
    assert view(fast) == view(slow) and fast.awaiting_count() == len(w0)
    assert fast.workers["w0"].results_sent == slow.workers["w0"].results_sent == 7


def test_event_numbers_past_int64_are_refused_by_the_report_decoder() -> None:
    import json

    import pytest

    from dranspose.transport import control

    for raw in ({"w": "w0", "done": [2**63]}, {"r": "red", "rx": {"w0": [10**30]}}, {"w": "w0", "done": [1], "sent": 2**64}):
        with pytest.raises(control.ControlMessageError):
            control.decode_report(json.dumps(raw).encode())


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.integers(0, 49), max_size=80))
def test_distinct_drops_repeats_only(events: list[int]) -> None:
    scan = make(50, 1, False)
    scan._t.slot[:] = np.random.default_rng(len(events)).integers(-5, 100, len(scan._t.slot))  # left by a previous call
    got = scan._t.distinct(np.array(events, dtype=np.int64))
    assert sorted(got.tolist()) == sorted(set(events))


def test_credits_of_many_workers_live_in_one_ledger() -> None:
    """Workers joining past the ledger's first size keep their counts; a worker that comes
    back after dying starts with nothing in flight."""
    scan = make(400, 0, False)
    for i in range(20):
        scan.add_worker(f"w{i}", ["generic"], 3 + i % 4)
    scan.assign_runs()  # every credit taken
    for i in range(20):
        slot = scan.workers[f"w{i}"]
        assert slot.in_flight == slot.capacity == 3 + i % 4 and slot.free() == 0
    scan.remove_worker("w7")
    assert scan.workers["w7"].in_flight == 0 and not scan.workers["w7"].alive
    scan.add_worker("w7", ["generic"], 5)
    assert scan.workers["w7"].in_flight == 0 and scan.workers["w7"].capacity == 5
    scan.assign_runs()
    assert scan.workers["w7"].in_flight == 5


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), nworkers=st.integers(1, 6))
def test_many_reports_with_general_events_read_together_as_one_by_one(seed: int, nworkers: int) -> None:
    """Reports that hold general-path events (broadcasts here) beside fast ones, several per
    worker in one read: each report's leftovers are its own (taken as slices of the read's
    leftovers, in report order), the outcome the same as applying the reports in turn."""
    rng = random.Random(seed)
    events = [[{"tags": ["generic"], "constraint": None if rng.random() < 0.3 else i}] for i in range(40)]

    def scan() -> Scan:
        s = Scan(compile_mapping({"a": events}))
        for i in range(nworkers):
            s.add_worker(f"w{i}", ["generic"], 100)
        return s

    together, in_turn = scan(), scan()
    assert together.assign() == in_turn.assign()
    held = {name: sorted(e for e, ws in together.open_events().items() if name in ws) for name in together.workers}
    reports: list[tuple[str, list[int], int, list[int]]] = []
    for name, evs in held.items():
        rng.shuffle(evs)
        cuts = sorted(rng.sample(range(len(evs) + 1), k=min(3, len(evs) + 1)))
        for a, b in zip([0, *cuts], [*cuts, len(evs)]):
            if b > a:
                results = [e for e in evs[a:b] if rng.random() < 0.7]
                reports.append((name, evs[a:b], len(results), results))
    rng.shuffle(reports)
    together.workers_done(reports)
    for report in reports:
        in_turn.workers_done([report])
    assert view(together) == view(in_turn)
    assert together.pending == in_turn.pending and together.awaiting == in_turn.awaiting
    assert together.awaiting_count() == in_turn.awaiting_count() > 0 or not any(r for *_x, r in reports)
