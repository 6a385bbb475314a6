"""Control plane at facility scale, simulated: the controller's assignment path without network.

Drives the pure scan core (:class:`dranspose.core.scan.Scan`) and what the scheduler does
around it per round: assignment batches encoded as written to the Redis assignment stream
(:mod:`dranspose.transport.assignments`), completion reports decoded from JSON and applied,
credits sized by :class:`~dranspose.services.controller.credits.CreditBook`. Workers are
simulated as the worker runs (:class:`SimWorker`): 10 us per event, passes of up to 64 events,
a completion report when a batch of the worker's ``DONE_BATCH`` events is full or by the
worker's :class:`~dranspose.core.flow.ReportPolicy` (out of work, age); each controller round
stands for 1 ms. Every event returns a result
(as analysis code does; ``--no-results``: none), which the simulated reducer confirms by
worker every ``REPORT_INTERVAL`` or ``REPORT_BATCH`` results, as the reducer reports them. Reports are encoded and decoded as on
the done stream (:mod:`dranspose.transport.control`). Only the controller's part is timed
(``time.process_time``); the simulation's own work is not counted.

    python bench/bench_control.py            # 10, 100, 1000 workers, 4 streams, 1M events
    python bench/bench_control.py --quick    # 200k events

Reports events assigned per second of controller CPU, microseconds per event over the whole
scan and over its middle 80% ("steady": without the start, where credits grow from their
initial value, and the end, where every worker running dry reports more often: costs per
worker and scan, not per event), bytes per event on the assignment stream, and the one-off
cost of compiling the map and its tables.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import deque
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dranspose.core.flow import ReportPolicy  # noqa: E402
from dranspose.core.runs import FastRun  # noqa: E402
from dranspose.core.scan import Phase, Scan  # noqa: E402
from dranspose.core.triggermap import compile_mapping  # noqa: E402
from dranspose.services.controller.credits import CreditBook  # noqa: E402
from dranspose.services.controller.scheduler import ASSIGN_BATCH  # noqa: E402
from dranspose.services.reducer import REPORT_BATCH, REPORT_INTERVAL  # noqa: E402
from dranspose.services.worker import DONE_BATCH, report_age_limit  # noqa: E402
from dranspose.transport import assignments, control  # noqa: E402

STREAMS = ("eiger", "pcap", "xspress3", "albaem")
MAPPING = "3f1b8d52-5d0e-4a0c-9d55-6b7f0c1e2a44"
RATE_HZ = 1e6  # events per second the detectors send (a PandA position capture at 1 MHz)
SVC_S = 5e-6  # simulated worker time per event (10 workers take 1 MHz at half load)
EVENT_BYTES = 4 * 2048
ROUND_S = 1e-3  # simulated control round trip (one controller round)
PASS = 64  # messages a worker reads per loop pass


class SimWorker:
    """A worker as :mod:`dranspose.services.worker` runs it, in simulated time: ``SVC_S`` per
    event, passes of up to ``PASS`` events, a report when ``batch`` completions wait (the
    worker's ``DONE_BATCH``) or by the worker's :class:`ReportPolicy` (out of work, age)."""

    def __init__(self, name: str, batch: int, n_workers: int) -> None:
        self.name = name
        self.queue: deque[int] = deque()  # assigned, not yet processed
        self.done: list[int] = []  # processed, not yet reported
        self.policy = ReportPolicy(batch, report_age_limit(n_workers))
        self.n, self.busy, self.nbytes = 0, 0.0, 0  # the cumulative counters of its reports

    def _report(self, now: float) -> list[int]:
        out, self.done = self.done[: self.policy.batch], self.done[self.policy.batch :]
        self.policy.sent(now)
        return out

    def run(self, start: float, end: float, rate: float) -> list[list[int]]:
        """Work from ``start`` to ``end`` on the events whose data has come (event ``e`` at
        ``e / rate``); the reports sent meanwhile (their event numbers)."""
        now, sent, q, policy = start, [], self.queue, self.policy
        while q and q[0] / rate <= end:
            if q[0] / rate > now:  # waits for data: reports if the policy says so, then sleeps
                if policy.due(len(self.done), len(self.done) >= len(q), now):
                    sent.append(self._report(now))
                now = q[0] / rate
            for _ in range(PASS):  # one loop pass: what has come, up to PASS events
                if not q or q[0] / rate > now:
                    break
                self.done.append(q.popleft())
                now += SVC_S
                self.n, self.busy, self.nbytes = self.n + 1, self.busy + SVC_S, self.nbytes + EVENT_BYTES
                policy.completed(now)
                if len(self.done) >= policy.batch:
                    sent.append(self._report(now))
            idle = not q or q[0] / rate > now
            if policy.due(len(self.done), idle and len(self.done) >= len(q), now):
                sent.append(self._report(now))
        if policy.due(len(self.done), len(self.done) >= len(q), end):  # waiting for data
            sent.append(self._report(end))
        return sent


def run(nworkers: int, nevents: int, report: int, capacity: int | None, with_results: bool = True,
        rate: float = RATE_HZ) -> dict[str, float]:
    t0 = time.process_time()
    mapping = {s: [[{"tags": ["generic"], "constraint": i}] for i in range(nevents)] for s in STREAMS}
    cmap = compile_mapping(mapping)
    t1 = time.process_time()
    scan = Scan(cmap)
    t2 = time.process_time()
    book = CreditBook()
    names = [f"worker-{i:04d}" for i in range(nworkers)]
    for name in names:
        scan.add_worker(name, ["generic"], book.admit(name, capacity))
    sims = {n: SimWorker(n, report, nworkers) for n in names}
    cpu = 0.0
    nbytes = n_reports = 0
    now = reducer_sent = 0.0
    reduced: dict[str, list[int]] = {}  # results the reducer received since its last report, by worker
    trace: list[tuple[float, float, int]] = []  # per round: simulated time, controller CPU so far, events completed
    while scan.phase is Phase.RUNNING:
        # ---- controller: one round of assignment (timed)
        c0 = time.process_time()
        runs = scan.assign_runs(ASSIGN_BATCH)
        encoded = [assignments.encode(MAPPING, r) for r in runs]
        if scan.held_back:
            book.held_back(scan.held_back)
            scan.held_back.clear()
        cpu += time.process_time() - c0
        # ---- simulation: deliver to workers (not timed)
        for r, text in zip(runs, encoded):
            nbytes += len(text)
            if isinstance(r, FastRun):
                ev = r.first + np.arange(len(r))
                order = np.argsort(r.target, kind="stable")
                t_sorted = r.target[order]
                bounds = np.flatnonzero(np.r_[True, t_sorted[1:] != t_sorted[:-1], True])
                for a, b in zip(bounds[:-1], bounds[1:]):
                    sims[r.workers[int(t_sorted[a])]].queue.extend(ev[order[a:b]].tolist())
            else:
                for e, targets in r:
                    for w in {w for ws in targets.values() for w in ws}:
                        sims[w].queue.append(e)
        now += ROUND_S
        msgs: list[bytes] = []
        for sim in sims.values():
            for done in sim.run(now - ROUND_S, now, rate):
                n_reports += 1
                results = done if with_results else None
                msgs.append(control.encode_report(control.WorkerReport(
                    sim.name, done, sim.n if with_results else 0, results=results, n=sim.n, busy=sim.busy,
                    nbytes=sim.nbytes)))
                if with_results:
                    reduced.setdefault(sim.name, []).extend(done)
        waiting = sum(len(events) for events in reduced.values())
        if waiting and (now - reducer_sent >= REPORT_INTERVAL - 1e-9 or waiting >= REPORT_BATCH):  # as the reducer reports
            total = {sim.name: sim.n for sim in sims.values()}
            msgs.append(control.encode_report(control.ReducerReport("reducer", total, False, "r1", reduced)))
            reduced, reducer_sent = {}, now
        # ---- controller: apply the completion reports (timed)
        c0 = time.process_time()
        decoded = [control.decode_report(raw) for raw in msgs]  # as the scheduler applies them (_apply_done)
        plain = [m for m in decoded if isinstance(m, control.WorkerReport)]  # read together: one call
        scan.workers_done([(m.worker, m.done, m.sent, m.results) for m in plain])
        for msg in plain:
            credits = book.report(msg.worker, now, msg.n, msg.busy, msg.nbytes, msg.starved)
            if credits is not None:
                scan.set_capacity(msg.worker, credits)
        for msg in decoded:
            if isinstance(msg, control.ReducerReport):
                scan.reducer_progress(msg.processed, msg.finished, msg.instance, msg.received)
        cpu += time.process_time() - c0
        trace.append((now, cpu, scan.completed))
    if with_results:  # the reducer's last report: every result was confirmed
        c0 = time.process_time()
        scan.reducer_progress({sim.name: sim.n for sim in sims.values()}, True, "r1", reduced)
        cpu += time.process_time() - c0
    assert scan.completed == len(cmap), (scan.completed, len(cmap))
    return {
        "steady_us_per_event": _steady_us_per_event(trace),
        "events_per_cpu_s": len(cmap) / cpu,
        "us_per_event": cpu / len(cmap) * 1e6,
        "bytes_per_event": nbytes / len(cmap),
        "events_per_report": len(cmap) / n_reports,
        "compile_us_per_event": (t1 - t0) / len(cmap) * 1e6,
        "tables_us_per_event": (t2 - t1) / len(cmap) * 1e6,
    }


def _steady_us_per_event(trace: list[tuple[float, float, int]]) -> float:
    """Controller CPU per completed event over the middle 80% of the scan's time: without
    the start (credits growing from their initial value) and the end (every worker running
    dry reports more often), whose cost is per worker and scan, not per event."""
    end = trace[-1][0]
    middle = [(cpu, done) for now, cpu, done in trace if 0.1 * end <= now <= 0.9 * end]
    if len(middle) < 100:  # under 0.1 s of middle (a smoke run): nothing steady to measure
        return math.nan
    (cpu0, done0), (cpu1, done1) = middle[0], middle[-1]
    return (cpu1 - cpu0) / max(1, done1 - done0) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--workers", default="10,100,1000")
    ap.add_argument("--report", type=int, default=DONE_BATCH, help="completions per report at most (default: the worker's)")
    ap.add_argument("--rate", type=float, default=RATE_HZ, help="events per second sent (default 1 MHz)")
    ap.add_argument("--capacity", type=int, default=None, help="fixed credits (default: adaptive)")
    ap.add_argument("--no-results", action="store_true", help="events return no result (no reducer confirmations)")
    args = ap.parse_args()
    nevents = args.events or (200_000 if args.quick else 1_000_000)
    print(f"{len(STREAMS)} streams, {nevents:,} events at {args.rate:,.0f} Hz, event i -> constraint i, reports of up to {args.report} events, "
          f"{'no results' if args.no_results else 'a result per event, confirmed by the reducer'}")
    print(f"{'workers':>8}{'events/s per CPU-s':>20}{'us/event':>10}{'steady us/ev':>14}{'bytes/event':>13}{'events/report':>15}"
          f"{'compile us/ev':>15}{'tables us/ev':>14}")
    for nw in [int(w) for w in args.workers.split(",")]:
        r = run(nw, nevents, args.report, args.capacity, not args.no_results, args.rate)
        print(f"{nw:>8}{r['events_per_cpu_s']:>20,.0f}{r['us_per_event']:>10.2f}{r['steady_us_per_event']:>14.2f}{r['bytes_per_event']:>13.2f}"
              f"{r['events_per_report']:>15.1f}"
              f"{r['compile_us_per_event']:>15.2f}{r['tables_us_per_event']:>14.2f}")


if __name__ == "__main__":
    main()
