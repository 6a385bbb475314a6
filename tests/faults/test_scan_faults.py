"""The scan state under faults (pure, hypothesis): worker death with re-routing, results lost
with a reducer restart, expired results, stalled events. Whatever happens the scan ends with
``completed + failed == total`` and the completed events are exactly those whose results the
reducer holds (among the events that produced results)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.scan import Phase, Scan
from dranspose.core.triggermap import compile_mapping


def vw(c: int | None) -> list[dict[str, Any]]:
    return [{"tags": ["generic"], "constraint": c}]


class Sim:
    """Workers, one ingester and a reducer around a Scan, driven by a random generator."""

    def __init__(self, n: int, nworkers: int, capacity: int, seed: int) -> None:
        self.scan = Scan(compile_mapping({"a": [vw(i % 4) for i in range(n)]}))
        self.rng = random.Random(seed)
        for i in range(nworkers):
            self.scan.add_worker(f"w{i}", ["generic"], capacity)
        self.delivered: set[tuple[str, int]] = set()  # frames a worker has (ingester sent them)
        self.routes: dict[int, tuple[str, ...]] = {}  # ingester routes not used yet
        self.transit: list[tuple[str, int]] = []  # results on their way to the reducer
        self.reducer: set[int] = set()  # events the current reducer holds a result of
        self.instance = 0
        self.with_result: set[int] = set()

    def assign(self) -> None:
        for event, targets in self.scan.assign():
            self.routes[event] = targets["a"]

    def ingest(self) -> None:
        if self.routes:
            event = min(self.routes)
            for w in self.routes.pop(event):
                if self.scan.workers[w].alive:
                    self.delivered.add((w, event))
                else:
                    self.scan.undeliverable([(w, event)])

    def work(self) -> None:
        if not self.delivered:
            return
        w, e = self.rng.choice(sorted(self.delivered))
        self.delivered.discard((w, e))
        if not self.scan.workers[w].alive:
            return
        result = self.rng.random() < 0.7
        if result:
            self.transit.append((w, e))
            self.with_result.add(e)
        self.scan.worker_done(w, [e], results=[e] if result else [])

    def reduce(self, count: int = 1) -> None:
        got, self.transit = self.transit[:count], self.transit[count:]
        self.reducer.update(e for _w, e in got)
        self.scan.reducer_progress({}, instance=str(self.instance), received=got)

    def kill(self, name: str) -> None:
        if not self.scan.workers[name].alive:
            return
        self.delivered = {(w, e) for w, e in self.delivered if w != name}  # in the dead process
        reroutes, _failed = self.scan.reroute_worker(name)
        for event, targets, added in reroutes:
            if event in self.routes:
                self.routes[event] = targets["a"]  # the ingester has not used the route yet
            else:
                self.scan.undeliverable([(w, event) for w in added])  # frames went to the dead one

    def restart_reducer(self) -> None:
        self.instance += 1
        self.reducer = set()
        self.transit = [p for p in self.transit if self.rng.random() < 0.5]  # some lost
        self.scan.reducer_progress({}, instance=str(self.instance), received=[])

    def run(self, kill_at: int | None, restart_at: int | None) -> None:
        steps = 0
        while self.scan.phase is Phase.RUNNING and steps < 10_000:
            steps += 1
            self.assign()
            op = self.rng.random()
            if op < 0.35:
                self.ingest()
            elif op < 0.75:
                self.work()
            else:
                self.reduce(self.rng.randint(1, 3))
            if steps == kill_at:
                self.kill(self.rng.choice(sorted(self.scan.workers)))
            if steps == restart_at:
                self.restart_reducer()
        assert self.scan.phase is not Phase.RUNNING, "scan hangs"
        for slot in self.scan.alive_workers():
            self.scan.worker_finished(slot.name, 0)
        self.reduce(len(self.transit))
        if not self.scan.ready_for_reducer_finish():
            self.scan.expire_results()
        assert self.scan.ready_for_reducer_finish()
        self.scan.reducer_progress({}, finished=True, instance=str(self.instance), received=[])
        assert self.scan.phase is Phase.FINISHED


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 30),
    nworkers=st.integers(2, 4),
    capacity=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    kill_at=st.none() | st.integers(1, 60),
    restart_at=st.none() | st.integers(1, 60),
)
def test_faults_end_with_exact_accounting(
    n: int, nworkers: int, capacity: int, seed: int, kill_at: int | None, restart_at: int | None
) -> None:
    sim = Sim(n, nworkers, capacity, seed)
    sim.run(kill_at, restart_at)
    scan = sim.scan
    total = len(scan.cmap)
    assert scan.completed + len(scan.failed) == total
    completed = set(range(total)) - scan.failed
    assert sim.reducer <= completed  # every result the reducer holds is a completed event
    for e in completed & sim.with_result:
        assert e in sim.reducer, f"event {e} counted completed, its result is not at the reducer"


def test_only_events_whose_frames_the_dead_worker_had_fail() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(0), vw(0), vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 8)
    scan.add_worker("w1", ["generic"], 8)
    owner = scan.assign()[0][1]["a"][0]
    other = "w1" if owner == "w0" else "w0"
    # the ingester sent events 0 and 1 to the owner; 2 and 3 are still queued there
    reroutes, failed = scan.reroute_worker(owner)
    assert failed == [] and [e for e, _t, _a in reroutes] == [0, 1, 2, 3]
    assert all(added == (other,) for _e, _t, added in reroutes)
    scan.undeliverable([(other, 0), (other, 1)])  # the ingester had used those routes
    scan.worker_done(other, [2, 3])
    assert scan.failed == {0, 1} and scan.completed == 2
    assert scan.phase is Phase.FINISHING


def test_missing_worker_keeps_place_and_constraint() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(1), vw(0), vw(1)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 1)
    scan.add_worker("w1", ["generic"], 1)
    first = dict(scan.assign())
    scan.mark_missing("w0")
    assert scan.progress()["missing_workers"] == ["w0"]
    assert scan.mark_back("w0")
    for e, t in first.items():
        scan.worker_done(t["a"][0], [e])
    second = dict(scan.assign())
    assert second[2]["a"] == first[0]["a"] and second[3]["a"] == first[1]["a"]
    assert not scan.failed


def test_result_confirmed_for_failed_event_counts_completed() -> None:
    scan = Scan(compile_mapping({"a": [vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 2)
    scan.assign()
    assert scan.remove_worker("w0") == [0]  # died before its report arrived
    assert scan.failed == {0}
    scan.reducer_progress({"w0": 1}, instance="r1", received=[("w0", 0)])  # the result got through
    assert scan.failed == set() and scan.completed == 1


def test_reducer_restart_fails_events_it_held_and_scan_ends() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(0), vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 4)
    scan.assign()
    scan.worker_done("w0", [0, 1, 2], results=[0, 1, 2])
    scan.reducer_progress({}, instance="r1", received=[("w0", 0)])
    assert scan.completed == 1
    assert scan.reducer_progress({}, instance="r2", received=[("w0", 2)]) is True
    scan.worker_finished("w0", 3)
    assert scan.phase is Phase.REDUCING and not scan.ready_for_reducer_finish()
    assert scan.expire_results() == [1]
    assert scan.ready_for_reducer_finish()
    scan.reducer_progress({}, finished=True, instance="r2", received=[])
    assert scan.phase is Phase.FINISHED
    assert scan.failed == {0, 1} and scan.completed == 1
    assert any("reducer restarted" in r for r in scan.progress()["failure_reasons"])  # type: ignore[union-attr]


def test_stalled_events_fail_and_abandon_ends() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(1), vw(2)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 1)
    scan.assign()
    assert scan.fail_stalled("frames never came") == [0]
    scan.abandon("no reducer")
    assert scan.phase is Phase.FINISHED and scan.completed + len(scan.failed) == 3


def test_give_up_fails_the_rest_and_finishes() -> None:
    scan = Scan(compile_mapping({"a": [vw(i % 2) for i in range(10)]}))
    scan.add_worker("w0", ["generic"], 2)
    scan.assign()
    failed = scan.give_up("frames gone")
    assert scan.phase is Phase.FINISHING
    assert scan.completed + len(scan.failed) == 12 and set(failed) == scan.failed


def test_late_report_of_replaced_reducer_is_ignored() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 4)
    scan.assign()
    scan.worker_done("w0", [0, 1], results=[0, 1])
    scan.reducer_progress({}, instance="old", received=[("w0", 0)])
    assert scan.reducer_progress({}, instance="new", received=[]) is True
    assert scan.reducer_progress({}, instance="old", received=[("w0", 1)]) is False  # gone with it
    assert scan.reducer_restarts == 1 and scan.failed == {0}
    scan.reducer_progress({}, instance="new", received=[("w0", 1)])
    assert scan.completed == 1


def test_stall_does_not_fail_events_only_waiting_for_the_reducer() -> None:
    scan = Scan(compile_mapping({"a": [vw(0), vw(0)]}, all_wrap=False))
    scan.add_worker("w0", ["generic"], 4)
    scan.assign()
    scan.worker_done("w0", [0], results=[0])  # processed; its result is on its way
    assert scan.fail_stalled("frames gone") == [1]
    scan.reducer_progress({}, instance="r", received=[("w0", 0)])
    assert scan.completed == 1 and scan.failed == {1}


def test_reroute_covers_fast_path_events() -> None:
    """Events assigned on the fast path (owner array, not in ``pending``) of a dead worker are
    re-routed like the others; a result of one confirmed by the reducer completes it."""
    scan = Scan(compile_mapping({"a": [vw(i % 4) for i in range(8)]}))  # + start and end events
    total = len(scan.cmap)
    scan.add_worker("w0", ["generic"], 16)
    scan.add_worker("w1", ["generic"], 16)
    assigned = dict(scan.assign())
    assert set(scan.pending) == {0, total - 1}  # start and end go to both: the general path
    assert scan.open_count() == 2 * 2 + 8  # the data events took the fast path
    scan.worker_done("w0", [0])
    scan.worker_done("w1", [0])
    w0 = sorted(e for e, t in assigned.items() if t["a"] == ("w0",))
    assert w0 and scan.owes("w0")
    scan.worker_done("w0", [w0[0]], 1, [w0[0]])  # done with a result, not confirmed yet
    reroutes, failed = scan.reroute_worker("w0")
    assert not failed and {e for e, _t, _a in reroutes} == set(w0[1:])
    assert all(t == {"a": ("w1",)} and a == ("w1",) for _e, t, a in reroutes)
    scan.reducer_progress({"w0": 1}, instance="r", received=[("w0", w0[0])])
    rest = [e for e in range(1, total) if e != w0[0]]
    scan.worker_done("w1", rest, 0, [])
    assert scan.completed == total and not scan.failed and scan.all_events_done()
