"""Latency at 80% load against the floor of this host: dranspose's pipeline (every component
its own CLI process, default settings, 2 workers, 2 kB frames, as ``bench_pipeline.py`` runs it)
and a framework-free pipeline of the same shape that spends the same CPU per event in each
role (``bench/shaped_pipeline.py``), at the same rate, scans alternating.

    python bench/bench_latency_floor.py              # 5 pairs of 2 s scans
    python bench/bench_latency_floor.py --pairs 8 --load 0.8
    python bench/bench_latency_floor.py --own-maximum   # each pipeline at 80% of its own maximum
    python bench/bench_latency_floor.py --own-maximum --work objects --coalesce   # spending as Python code does

1. dranspose's maximum: the median events/s of three 20,000-frame bursts.
2. The rate: ``--load`` (0.8) of it. One paced scan of dranspose at that rate, its CPU per event
   per role from ``/proc/<pid>/stat`` (utime + stime over the middle 1.5 s): ingester, workers
   (summed; each event visits one), reducer, and control (controller and redis-server).
3. The shaped pipeline, first spending nothing: its own CPU per event per role at that rate;
   then spending the difference, so that each role costs what dranspose's does (printed).
   For both paced scans, the scheduler's view too, per role and kind of thread (the data loop
   and the Python threads beside it, or ZeroMQ's I/O thread): µs per event on a core and
   waiting for one (``/proc/<pid>/task/<tid>/schedstat``), and switches per 1,000 events
   where the thread blocked or was preempted (``status``).
4. ``--pairs`` pairs of 2 s scans at that rate, alternating which goes first: p50/p99 from the
   ingester's read and from the source's send, per scan and pooled, and the median of the
   per-pair p99 ratios dranspose / shaped; beside each scan, how busy the whole machine was
   while its frames were sent (``/proc/stat``, every process and the kernel): the share of the
   two cores, and the share of its 0.1 s windows in which they were 95% busy or more.

With ``--own-maximum`` each pipeline is paced at ``--load`` of its own burst maximum instead
(the target's measure: the shaped pipeline, spending dranspose's CPU per event when paced,
spends less in bursts), beside a third arm, the shaped pipeline spending nothing (``bare``):
after step 3, three bursts of each, alternating; then rounds of one scan each, each pipeline
first in turn, with how many scans kept their p99 under 20 ms.

What the shaped pipeline does not have: flow control, assignment, Redis round trips, threads
beside the data loop, Python objects per event. Where its p99 is near dranspose's, the host
(two cores this full) sets the tail; the difference is what the framework adds. The pipeline
that is not scanning stays up, idle, beside the other (dranspose's idle components take about
5% of a core).

How the shaped pipeline spends (``--work``): by default in a loop that stays in the L1 cache,
whose cost does not depend on what ran on the core before; dranspose's data loops run Python
code through their objects, which costs more after other processes used the core's caches.
``--work objects`` spends by reading through ``--walk-kib`` (1,024) KiB of Python objects per
process instead (:class:`bench.machine.ObjectWalk`): calibrated warm, it costs more paced, so
its spend is scaled once after the first check towards dranspose's CPU per role (printed). The
match is rough: the walk also pushes the rest of each process's work out of the caches, and the
host's speed moves between the two scans. ``--coalesce`` gives the
shaped ingester and reducer dranspose's wait for more messages (its ``Coalescer``), so that
their passes are as large as dranspose's. ``--payload`` makes every shaped pipeline also run the
benchmark's analysis per event as dranspose does (``BenchWorker.process_event`` on the header and
frame, the result pickled, ``BenchReducer.process_result`` on it unpickled): ``bare`` is then the
user's code and the hops without the framework.

    python bench/bench_latency_floor.py --own-maximum --payload --coalesce"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import CliPipeline, image_count, ours, percentiles, process_cpu_s, stins_messages  # noqa: E402
from bench.machine import WALK_BYTES, MachineSample, machine_sample  # noqa: E402
from bench.shaped_pipeline import WORK_KINDS, Costs, ShapedPipeline, iterations_per_us  # noqa: E402

ROLES = ("ingester", "workers", "reducer", "control")
WINDOW_S = 1.5  # CPU is sampled over this much of a 3 s scan, after its first 0.65 s


#: what /proc says about one thread over a window: CPU ns, ns runnable but waiting for a core,
#: voluntary switches (it blocked: poll, recv, a lock), involuntary ones (it was preempted)
SchedStat = tuple[int, int, int, int]


FULL = 0.95  # a 0.1 s window this busy or more counts as full


def busy_share(samples: list[MachineSample], t0: float, t1: float) -> float | None:
    """The share of the cores' time spent busy between the first and the last sample in
    ``[t0, t1]``; None with fewer than two samples there or no CPU time between them."""
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2 or inside[-1][1] <= inside[0][1]:
        return None
    return 1.0 - (inside[-1][2] - inside[0][2]) / (inside[-1][1] - inside[0][1])


def full_windows(samples: list[MachineSample], t0: float, t1: float, width: float = 0.1) -> float | None:
    """The share of the ``width``-second windows of ``[t0, t1]`` in which the cores were at
    least ``FULL`` busy (windows without two samples are left out); None without any."""
    shares = [busy_share(samples, a, a + width) for a in np.arange(t0, t1 - width / 2, width)]
    known = [x for x in shares if x is not None]
    return sum(x >= FULL for x in known) / len(known) if known else None


class MachineLoad:
    """Samples the whole machine every ``interval`` seconds in a thread until :meth:`stop`."""

    def __init__(self, interval: float = 0.02) -> None:
        self.samples: list[MachineSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self.samples.append(machine_sample())
            self._stop.wait(interval)

    def during(self, t0: float, t1: float) -> str:
        """``busy 83%, full 10%`` for the window ``[t0, t1]`` (``?`` where unknown)."""
        share, full = busy_share(self.samples, t0, t1), full_windows(self.samples, t0, t1)
        return f"busy {'?' if share is None else f'{share:.0%}':>4}, full {'?' if full is None else f'{full:.0%}':>4}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def thread_kind(comm: str) -> str:
    """``io`` for ZeroMQ's background threads (``ZMQbg/...``), ``main`` for the rest (the data
    loop and the Python threads beside it, which share the process name)."""
    return "io" if comm.startswith("ZMQbg") else "main"


def sched_stats(pids: tuple[int, ...]) -> dict[str, SchedStat]:
    """Per thread kind, summed over ``pids``' threads: (CPU ns, runqueue-wait ns, voluntary
    switches, involuntary switches) so far, from ``/proc/<pid>/task/<tid>/{schedstat,status}``
    (threads that end while read are skipped)."""
    out: dict[str, list[int]] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                with open(f"{base}/comm") as fh:
                    comm = fh.read().strip()
                with open(f"{base}/schedstat") as fh:
                    run_ns, wait_ns = (int(x) for x in fh.read().split()[:2])
                with open(f"{base}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if "ctxt_switches" in line)
            except (OSError, ValueError):
                continue
            row = out.setdefault(thread_kind(comm), [0, 0, 0, 0])
            row[0] += run_ns
            row[1] += wait_ns
            row[2] += int(fields["voluntary_ctxt_switches"])
            row[3] += int(fields["nonvoluntary_ctxt_switches"])
    return {kind: (r[0], r[1], r[2], r[3]) for kind, r in out.items()}


def dranspose_roles(pipe: CliPipeline) -> dict[str, tuple[int, ...]]:
    """The pids of each role of a CLI pipeline (control: the controller and redis-server)."""
    roles: dict[str, tuple[int, ...]] = {role: () for role in ROLES}
    for p in pipe.procs:
        args = " ".join(map(str, p.args))
        for role, word in (("ingester", " ingester "), ("workers", " worker "), ("reducer", " reducer "), ("control", " controller ")):
            if word in f"{args} ":
                roles[role] += (p.pid,)
    assert pipe.redis.proc is not None
    roles["control"] += (pipe.redis.proc.pid,)
    return roles


def profile(roles: dict[str, tuple[int, ...]], scan: Any, rate: float,
            delay_s: float) -> tuple[dict[str, float], dict[tuple[str, str], tuple[float, ...]], Any]:
    """Run ``scan()`` (3 s of frames at ``rate``) and return, over ``WINDOW_S`` starting
    ``delay_s`` after the call: µs of CPU per event per role; the scheduler's view per (role,
    thread kind): CPU µs, runqueue-wait µs and voluntary / involuntary switches, each per event;
    and what ``scan`` returned."""
    box: dict[str, Any] = {}

    def sample() -> None:
        time.sleep(delay_s)
        before = {r: process_cpu_s(pids) for r, pids in roles.items()}
        sched0 = {r: sched_stats(pids) for r, pids in roles.items()}
        t0 = time.monotonic()
        time.sleep(WINDOW_S)
        after = {r: process_cpu_s(pids) for r, pids in roles.items()}
        sched1 = {r: sched_stats(pids) for r, pids in roles.items()}
        events = rate * (time.monotonic() - t0)
        box["cpu"] = {r: (after[r] - before[r]) / events * 1e6 for r in roles}
        box["sched"] = {
            (r, kind): ((a[0] - b[0]) / 1e3 / events, (a[1] - b[1]) / 1e3 / events, (a[2] - b[2]) / events, (a[3] - b[3]) / events)
            for r in roles for kind, a in sched1[r].items() if (b := sched0[r].get(kind)) is not None
        }

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = scan()
    sampler.join()
    return box["cpu"], box["sched"], result


def show_sched(label: str, sched: dict[tuple[str, str], tuple[float, ...]]) -> None:
    """One line per role and thread kind: µs of CPU and of waiting for a core per event, and
    switches per 1,000 events."""
    print(f"  {label}: per event, µs on a core / µs waiting for one; per 1,000 events, switches blocked / preempted")
    for (role, kind), (run_us, wait_us, vol, invol) in sorted(sched.items()):
        if run_us < 0.05:
            continue
        print(f"    {role:<9}{kind:<5}{run_us:7.1f} /{wait_us:7.1f} µs   {vol * 1e3:7.1f} /{invol * 1e3:7.1f}", flush=True)


def show_cpu(label: str, cpu: dict[str, float]) -> None:
    print(f"  {label:<34}" + "".join(f"{r} {cpu[r]:5.1f}  " for r in ROLES) + f"total {sum(cpu.values()):5.1f} µs/event", flush=True)


Scan = Callable[[list[list[bytes]], "float | None"], dict[str, Any]]


def costs_of(spend: dict[str, float]) -> Costs:
    """The shaped pipeline's costs from µs per event per role (:data:`ROLES`)."""
    return Costs(spend["ingester"], spend["workers"], spend["reducer"], spend["control"])


def own_rates(arms: dict[str, Scan], burst: list[list[bytes]], load: float) -> dict[str, float]:
    """``load`` of each pipeline's own burst maximum: the median of three bursts each,
    the pipelines alternating, so that all are taken in the same minutes (printed)."""
    images = image_count(burst)
    maxima: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(3):
        for name, scan in arms.items():
            maxima[name].append(images / scan(burst, None)["elapsed"])
    for name, ms in maxima.items():
        print(f"{name} burst maximum {statistics.median(ms):,.0f} events/s ({', '.join(f'{m:,.0f}' for m in ms)})", flush=True)
    return {name: load * statistics.median(ms) for name, ms in maxima.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5, help="pairs of 2 s scans (default 5)")
    ap.add_argument("--load", type=float, default=0.8, help="fraction of dranspose's burst maximum (default 0.8)")
    ap.add_argument("--own-maximum", action="store_true",
                    help="pace each pipeline at --load of its own burst maximum (both measured again, "
                         "alternating, once the shaped pipeline spends dranspose's CPU), not both at dranspose's")
    ap.add_argument("--work", choices=WORK_KINDS, default="loop",
                    help="how the shaped pipeline spends its CPU: loop (a loop that stays in the L1 cache, "
                         "default) or objects (reads through --walk-kib of Python objects per process: slower "
                         "after other processes used the core, as dranspose's data loops are)")
    ap.add_argument("--walk-kib", type=int, default=WALK_BYTES >> 10,
                    help=f"with --work objects: KiB of objects each process reads through (default {WALK_BYTES >> 10})")
    ap.add_argument("--payload", action="store_true",
                    help="every event of the shaped pipelines also runs the benchmark's analysis (the worker's "
                         "process_event, a pickled result, the reducer's process_result), as dranspose runs it: "
                         "then bare is that analysis without the framework")
    ap.add_argument("--coalesce", action="store_true",
                    help="the shaped pipeline's ingester and reducer wait for more messages as dranspose's do "
                         "(its Coalescer) instead of taking what has come")
    args = ap.parse_args()
    walk = args.walk_kib << 10
    iters = iterations_per_us(work=args.work, walk_bytes=walk)

    def shaped_pipeline(spend: dict[str, float] | None = None) -> ShapedPipeline:
        """A framework-free pipeline as the options ask: spending ``spend`` (µs per event per
        role) as ``--work`` says, or nothing (then no walk is built)."""
        if spend is None:
            return ShapedPipeline(Costs(), 2, iters, coalescing=args.coalesce, payload=args.payload)
        return ShapedPipeline(costs_of(spend), 2, iters, args.work, args.coalesce, walk, args.payload)
    pipe = ours(2)
    shaped: ShapedPipeline | None = None
    bare: ShapedPipeline | None = None
    try:
        pipe.scan(stins_messages(2000, 2048))  # warm-up
        burst = stins_messages(20000, 2048)
        maxima = [20000 / pipe.scan(burst)["elapsed"] for _ in range(3)]
        rate = args.load * statistics.median(maxima)
        print(f"dranspose burst maximum {statistics.median(maxima):,.0f} events/s "
              f"({', '.join(f'{m:,.0f}' for m in maxima)}); scans at {args.load:.0%} of it: {rate:,.0f} Hz", flush=True)
        long_scan = stins_messages(int(3 * rate), 2048)
        # dranspose's scan sends after posting the mapping and 0.5 s more: sample later
        target, target_sched, _ = profile(dranspose_roles(pipe), lambda: pipe.scan(long_scan, rate=rate), rate, 0.55 + 0.65)
        show_cpu("dranspose", target)
        shaped = shaped_pipeline()
        overhead, _, _ = profile(shaped.pids(), lambda: shaped.scan(long_scan, rate), rate, 0.65)  # type: ignore[union-attr]
        show_cpu("shaped, spending nothing", overhead)
        shaped.close()
        spend = {r: max(0.0, target[r] - overhead[r]) for r in ROLES}
        shaped = shaped_pipeline(spend)
        check, check_sched, _ = profile(shaped.pids(), lambda: shaped.scan(long_scan, rate), rate, 0.65)  # type: ignore[union-attr]
        show_cpu("shaped, spending the difference", check)
        if args.work != "loop":  # calibrated warm, the walk costs more paced: scaled once to match
            spend = {r: spend[r] * spend[r] / max(check[r] - overhead[r], 1e-3) if spend[r] else 0.0 for r in ROLES}
            shaped.close()
            shaped = shaped_pipeline(spend)
            check, check_sched, _ = profile(shaped.pids(), lambda: shaped.scan(long_scan, rate), rate, 0.65)
            show_cpu("shaped, the spend scaled to match", check)
        print(f"\nthe scheduler's view at {rate:,.0f} Hz (main: the data loop and the threads beside it; io: ZeroMQ's):")
        show_sched("dranspose", target_sched)
        show_sched("shaped, spending the difference", check_sched)

        arms: dict[str, Scan] = {"dranspose": lambda msgs, r: pipe.scan(msgs, rate=r),
                                 "shaped": shaped.scan}
        rates = {"dranspose": rate, "shaped": rate}
        if args.own_maximum:  # and the floor: the shaped pipeline spending nothing
            bare = shaped_pipeline()
            arms["bare"] = bare.scan
            rates = own_rates(arms, burst, args.load)
        scans = {name: stins_messages(int(2 * r), 2048) for name, r in rates.items()}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
        at = ", ".join(f"{name} at {r:,.0f} Hz" for name, r in rates.items()) if args.own_maximum else f"at {rate:,.0f} Hz"
        print(f"\n{args.pairs} rounds of 2 s scans, {at}:  {'ingester -> reducer':^30}  {'source -> reducer':^30}"
              "  the machine while the frames were sent")
        load = MachineLoad()
        try:
            for k in range(args.pairs):
                names = list(arms)
                for name in names[k % len(names):] + names[:k % len(names)]:  # each goes first in turn
                    s = arms[name](scans[name], rates[name])
                    # elapsed: first send -> last result in both; dranspose's summary also says when it ended
                    first_send = s.get("finished", time.time()) - s["elapsed"]
                    runs[name].append(s)
                    sending_s = len(scans[name]) / rates[name]
                    print(f"  #{k + 1} {name:<10} {percentiles(s['ingest_latency'])}  {percentiles(s['latency'])}"
                          f"  {load.during(first_send, first_send + sending_s)}", flush=True)
        finally:
            load.stop()
        print()
        for name, ss in runs.items():
            pooled = {key: [x for s in ss for x in s[key]] for key in ("ingest_latency", "latency")}
            print(f"  pooled {name:<10} {percentiles(pooled['ingest_latency'])}  {percentiles(pooled['latency'])}")
        p99 = {name: [float(np.percentile(s["ingest_latency"], 99)) for s in ss] for name, ss in runs.items()}
        ratio = statistics.median(a / b for a, b in zip(p99["dranspose"], p99["shaped"]))
        print(f"  p99 ingester -> reducer, dranspose / shaped: median of {args.pairs} per-pair ratios {ratio:.2f}x")
        for name, xs in p99.items():
            print(f"  {name}: p99 under 20 ms in {sum(x < 0.020 for x in xs)} of {len(xs)} scans")
    finally:
        pipe.close()
        for other in (shaped, bare):
            if other is not None:
                other.close()


if __name__ == "__main__":
    main()
