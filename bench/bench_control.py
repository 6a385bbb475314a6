"""Control plane at facility scale, simulated: the controller's assignment path without network.

Drives the pure scan core (:class:`dranspose.core.scan.Scan`) and what the scheduler does
around it per round: assignment batches encoded as written to the Redis assignment stream
(:mod:`dranspose.transport.assignments`), completion reports decoded from JSON and applied,
credits sized by :class:`~dranspose.services.controller.credits.CreditBook`. Workers are
simulated: each completes its events and reports them in batches of ``--report`` events
(so reports per event do not depend on the number of workers), each simulated worker taking
10 us per event and each controller round standing for 1 ms. Every event returns a result
(as analysis code does; ``--no-results``: none), which the simulated reducer confirms once
per round, by worker, as the reducer reports them. Reports are encoded and decoded as on
the done stream (:mod:`dranspose.transport.control`). Only the controller's part is timed
(``time.process_time``); the simulation's own work is not counted.

    python bench/bench_control.py            # 10, 100, 1000 workers, 4 streams, 1M events
    python bench/bench_control.py --quick    # 200k events

Reports events assigned per second of controller CPU, microseconds per event, bytes per
event on the assignment stream, and the one-off cost of compiling the map and its tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dranspose.core.scan import FastRun, Phase, Scan  # noqa: E402
from dranspose.core.triggermap import compile_mapping  # noqa: E402
from dranspose.services.controller.credits import CreditBook  # noqa: E402
from dranspose.services.controller.scheduler import ASSIGN_BATCH  # noqa: E402
from dranspose.transport import assignments, control  # noqa: E402

STREAMS = ("eiger", "pcap", "xspress3", "albaem")
MAPPING = "3f1b8d52-5d0e-4a0c-9d55-6b7f0c1e2a44"
SVC_S = 1e-5  # simulated worker time per event (100 kHz: 10 workers make a 1 MHz PandA)
ROUND_S = 1e-3  # simulated control round trip (one controller round)


def run(nworkers: int, nevents: int, report: int, capacity: int | None, with_results: bool = True) -> dict[str, float]:
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
    queues: dict[str, list[int]] = {n: [] for n in names}  # simulated: events at each worker
    counters = {n: [0, 0.0, 0] for n in names}
    cpu = 0.0
    nbytes = 0
    now = 0.0
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
                    queues[r.workers[int(t_sorted[a])]].extend(ev[order[a:b]].tolist())
            else:
                for e, targets in r:
                    for w in {w for ws in targets.values() for w in ws}:
                        queues[w].append(e)
        now += ROUND_S
        msgs: list[bytes] = []
        reduced: dict[str, list[int]] = {}  # what the reducer received this round, by worker
        per_round = int(ROUND_S / SVC_S)  # events a worker gets through in one round
        for name, q in queues.items():
            budget = per_round
            while q and budget > 0 and (len(q) >= report or scan.next_event >= len(cmap) or not runs):
                take = min(report, budget)
                done, q = q[:take], q[take:]
                budget -= take
                c = counters[name]
                c[0] += len(done)
                c[1] += SVC_S * len(done)
                c[2] += 4 * 2048 * len(done)
                results = done if with_results else None
                msgs.append(control.encode_report(control.WorkerReport(
                    name, done, c[0] if with_results else 0, results=results, n=c[0], busy=c[1], nbytes=c[2])))
                if with_results:
                    reduced.setdefault(name, []).extend(done)
            queues[name] = q
        if reduced:
            total = {n: c[0] for n, c in counters.items()}
            msgs.append(control.encode_report(control.ReducerReport("reducer", total, False, "r1", reduced)))
        # ---- controller: apply the completion reports (timed)
        c0 = time.process_time()
        decoded = [control.decode_report(raw) for raw in msgs]  # as the scheduler applies them (_apply_done)
        plain = [m for m in decoded if isinstance(m, control.WorkerReport)]  # read together: one call
        scan.workers_done([(m.worker, m.done, m.sent, m.results) for m in plain])
        for msg in plain:
            credits = book.report(msg.worker, msg.fields(), now)
            if credits is not None:
                scan.set_capacity(msg.worker, credits)
        for msg in decoded:
            if isinstance(msg, control.ReducerReport):
                scan.reducer_progress(msg.processed, msg.finished, msg.instance, msg.received)
        cpu += time.process_time() - c0
    if with_results:  # the reducer finishes; every result was confirmed
        scan.reducer_progress({}, True, "r1", {})
    assert scan.completed == len(cmap), (scan.completed, len(cmap))
    return {
        "events_per_cpu_s": len(cmap) / cpu,
        "us_per_event": cpu / len(cmap) * 1e6,
        "bytes_per_event": nbytes / len(cmap),
        "compile_us_per_event": (t1 - t0) / len(cmap) * 1e6,
        "tables_us_per_event": (t2 - t1) / len(cmap) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--workers", default="10,100,1000")
    ap.add_argument("--report", type=int, default=32, help="events per simulated completion report")
    ap.add_argument("--capacity", type=int, default=None, help="fixed credits (default: adaptive)")
    ap.add_argument("--no-results", action="store_true", help="events return no result (no reducer confirmations)")
    args = ap.parse_args()
    nevents = args.events or (200_000 if args.quick else 1_000_000)
    print(f"{len(STREAMS)} streams, {nevents:,} events, event i -> constraint i, reports of {args.report} events, "
          f"{'no results' if args.no_results else 'a result per event, confirmed by the reducer'}")
    print(f"{'workers':>8}{'events/s per CPU-s':>20}{'us/event':>10}{'bytes/event':>13}{'compile us/ev':>15}{'tables us/ev':>14}")
    for nw in [int(w) for w in args.workers.split(",")]:
        r = run(nw, nevents, args.report, args.capacity, not args.no_results)
        print(f"{nw:>8}{r['events_per_cpu_s']:>20,.0f}{r['us_per_event']:>10.2f}{r['bytes_per_event']:>13.2f}"
              f"{r['compile_us_per_event']:>15.2f}{r['tables_us_per_event']:>14.2f}")


if __name__ == "__main__":
    main()
