"""Where the slowest events of a paced scan waited, as the kernel's scheduler saw it.

Runs this project's pipeline as ``bench_pipeline.py`` does (every component its own CLI
process, 2 workers, 2 kB frames, paced) under ``perf sched record`` (Linux ``perf``, root or
``kernel.perf_event_paranoid`` <= 1), and for each scan prints its latency, how the cores were
used while the frames came (both busy, one, none; how long a core was idle while a thread
waited, runnable, on the other), and, for the slowest events, a timeline of every thread of
the pipeline and of each core, one character per step, from a little before the ingester read
the event's frame until its worker's ``process_event``:

    python bench/sched_trace.py --rate 22000 --scans 3 --worst 3

Thread rows: ``X`` on a core, ``r`` runnable but waiting for one, ``.`` asleep. Core rows:
what ran there: ``I`` ingester, ``0``/``1`` workers, ``R`` reducer, ``C`` controller, ``D``
redis-server, ``S`` the source (this process), lower case (``i w r c s``) another thread of
the same process (ZeroMQ's I/O threads, the control reader, ...), ``k`` anything else,
``.`` idle. ``^`` marks the ingester's read and the worker's call.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterable, TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import CliPipeline, ours, percentiles, stins_messages  # noqa: E402

RUNNING, RUNNABLE, ASLEEP = "X", "r", "."

_EVENT = re.compile(r"\[(\d+)\]\s+(\d+\.\d+):\s+sched:(\w+):\s+(.*)$")
_SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
_WAKE = re.compile(r"comm=(.*?) pid=(\d+)")


@dataclass
class Trace:
    """What ``perf sched script`` printed, as intervals: per thread its states
    (:data:`RUNNING`, :data:`RUNNABLE`, :data:`ASLEEP`), per core the thread on it (0: idle),
    and the names the threads had."""

    states: dict[int, list[tuple[float, float, str]]] = field(default_factory=lambda: defaultdict(list))
    cores: dict[int, list[tuple[float, float, int]]] = field(default_factory=lambda: defaultdict(list))
    names: dict[int, str] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None


def parse_sched_script(lines: Iterable[str]) -> Trace:
    """Intervals from the ``sched_switch`` and ``sched_wak*`` lines of ``perf sched script``
    (other lines are skipped), up to the last event. A thread switched out in state ``R`` was
    preempted (runnable); in any other state it sleeps until a wake-up makes it runnable.
    Threads and cores have no interval before their first event."""
    trace = Trace()
    state: dict[int, tuple[str, float]] = {}
    on_core: dict[int, tuple[int, float]] = {}

    def enter(tid: int, new: str, t: float) -> None:
        old = state.get(tid)
        if old is not None and old[1] < t:
            trace.states[tid].append((old[1], t, old[0]))
        state[tid] = (new, t)

    for line in lines:
        m = _EVENT.search(line)
        if not m:
            continue
        core, t, kind, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        trace.start = t if trace.start is None else trace.start
        trace.end = t
        if kind == "sched_switch":
            s = _SWITCH.search(rest)
            if not s:
                continue
            prev, prev_state, nxt = int(s.group(2)), s.group(3), int(s.group(5))
            trace.names[prev], trace.names[nxt] = s.group(1), s.group(4)
            if prev:
                enter(prev, RUNNABLE if prev_state.startswith("R") else ASLEEP, t)
            if nxt:
                enter(nxt, RUNNING, t)
            was = on_core.get(core)
            if was is not None and was[1] < t:
                trace.cores[core].append((was[1], t, was[0]))
            on_core[core] = (nxt, t)
        elif kind.startswith("sched_wak"):
            w = _WAKE.search(rest)
            if w:
                tid = int(w.group(2))
                trace.names.setdefault(tid, w.group(1))
                if state.get(tid, (ASLEEP, 0.0))[0] == ASLEEP:
                    enter(tid, RUNNABLE, t)
    if trace.end is not None:  # what was open at the last event lasts until it
        for tid in list(state):
            enter(tid, state[tid][0], trace.end)
        for core, (tid, since) in on_core.items():
            if since < trace.end:
                trace.cores[core].append((since, trace.end, tid))
    return trace


def core_use(trace: Trace, start: float, end: float, min_wait_s: float = 0.0002) -> dict[str, float]:
    """Shares of ``start .. end``: ``"2 busy"``, ``"1 busy"``, ``"0 busy"`` (cores running a
    thread), and ``"idle while waiting"``: a core idle while some thread was runnable, counted
    only where that lasted ``min_wait_s`` or more (a thread woken on an idle core is runnable
    for some microseconds before it runs: that is the wake-up, not work left queued on a busy
    core while another idles)."""
    points: list[tuple[float, int, int]] = []  # (time, +1/-1, kind: 0 busy core, 1 runnable thread)
    for occupants in trace.cores.values():
        for a, b, tid in occupants:
            if tid and b > start and a < end:
                points += [(max(a, start), 1, 0), (min(b, end), -1, 0)]
    for states in trace.states.values():
        for a, b, st in states:
            if st == RUNNABLE and b > start and a < end:
                points += [(max(a, start), 1, 1), (min(b, end), -1, 1)]
    points.sort()
    ncores = max(len(trace.cores), 1)
    busy = waiting = 0
    last = start
    since: float | None = None  # start of the current stretch of a core idle while a thread waits
    out: defaultdict[str, float] = defaultdict(float)

    def close(t: float) -> None:
        nonlocal since
        if since is not None and t - since >= min_wait_s:
            out["idle while waiting"] += t - since
        since = None

    for t, step, kind in points:
        if t > last:
            out[f"{busy} busy"] += t - last
        last = t
        if kind == 0:
            busy += step
        else:
            waiting += step
        idle_waiting = waiting > 0 and busy < ncores
        if idle_waiting and since is None:
            since = t
        elif not idle_waiting:
            close(t)
    if end > last:
        out[f"{busy} busy"] += end - last
    close(end)
    span = end - start
    return {k: v / span for k, v in out.items()} if span > 0 else {}


T = TypeVar("T", bound=Hashable)


def _dominant(spans: list[tuple[float, float, T]], a: float, b: float) -> T | None:
    """What held the longest share of ``a .. b`` among ``spans`` (None: nothing recorded)."""
    acc: defaultdict[T, float] = defaultdict(float)
    for x, y, what in spans:
        if y > a and x < b:
            acc[what] += min(y, b) - max(x, a)
    return max(acc, key=lambda k: acc[k]) if acc else None


def thread_row(trace: Trace, tid: int, start: float, end: float, step: float) -> str:
    """One character per ``step``: the state the thread was in longest (blank: no record)."""
    spans = trace.states.get(tid, [])
    return "".join(_dominant(spans, start + k * step, start + (k + 1) * step) or " " for k in range(round((end - start) / step)))


def core_row(trace: Trace, core: int, start: float, end: float, step: float, code: dict[int, str]) -> str:
    """One character per ``step``: the code of the thread that ran longest (``.`` idle, ``k``
    a thread without a code)."""
    spans = trace.cores.get(core, [])
    out = []
    for k in range(round((end - start) / step)):
        tid = _dominant(spans, start + k * step, start + (k + 1) * step)
        out.append(" " if tid is None else "." if tid == 0 else code.get(tid, "k"))
    return "".join(out)


def thread_roles(processes: dict[str, int]) -> tuple[dict[int, str], dict[int, str]]:
    """For each live thread of the named processes (``{"ingester": pid, "w0": pid, ...}``):
    its row label and its one-character code for the core rows."""
    letters = {"ingester": "I", "reducer": "R", "controller": "C", "redis": "D", "source": "S"}
    labels: dict[int, str] = {}
    codes: dict[int, str] = {}
    for name, pid in processes.items():
        main = letters.get(name, name[-1] if name[-1].isdigit() else "k")
        other = main.lower() if main.isalpha() else "w"
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as fh:
                    comm = fh.read().strip()
            except OSError:
                comm = "?"
            labels[tid] = name if tid == pid else f"{name} {'io' if comm.startswith('ZMQbg/IO') else comm}"
            codes[tid] = main if tid == pid else other
    return labels, codes


def traced_scan(pipe: CliPipeline, msgs: list[list[bytes]], rate: float, data: str,
                processes: dict[str, int]) -> tuple[dict[str, Any], tuple[dict[int, str], dict[int, str]]]:
    """One scan under ``perf sched record`` (timestamps on CLOCK_MONOTONIC, the clock the
    benchmark reducer stamps arrivals with); also the threads' roles, read 1 s into the scan
    (the source's sender thread lives only as long as its scan)."""
    perf = subprocess.Popen(["perf", "sched", "record", "-k", "CLOCK_MONOTONIC", "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    roles: list[tuple[dict[int, str], dict[int, str]]] = []
    reader = threading.Timer(1.0, lambda: roles.append(thread_roles(processes)))
    reader.start()
    try:
        summary = pipe.scan(msgs, rate=rate)
    finally:
        reader.join()
        perf.send_signal(2)
        perf.wait(60)
    return summary, roles[0] if roles else thread_roles(processes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=22000.0, help="frames per second (2 kB)")
    ap.add_argument("--scans", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="of frames per scan")
    ap.add_argument("--worst", type=int, default=3, help="slowest events shown per scan (one per 20 ms)")
    ap.add_argument("--step-ms", type=float, default=0.5)
    ap.add_argument("--src", default=None, help="another tree's src folder to run instead (e.g. a patched copy)")
    args = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("needs perf (Debian: linux-perf)")
    out = tempfile.mkdtemp(prefix="sched-trace-")
    pipe = ours(2, args.src)
    try:
        msgs = stins_messages(int(args.rate * args.seconds), 2048)
        pipe.scan(stins_messages(2000, 2048))  # warm-up
        processes = {"source": os.getpid(), "redis": pipe.redis.proc.pid if pipe.redis.proc else -1}
        for p in pipe.procs:
            argv = [str(a) for a in p.args]
            kind = argv[argv.index("dranspose.cli") + 1]
            processes[argv[argv.index("-n") + 1] if kind == "worker" else kind] = p.pid
        step = args.step_ms / 1e3
        for k in range(args.scans):
            data = os.path.join(out, f"scan{k}.data")
            summary, (labels, codes) = traced_scan(pipe, msgs, args.rate, data, processes)
            if not os.path.exists(data):
                raise SystemExit("perf sched record wrote nothing: it needs root or kernel.perf_event_paranoid <= 1")
            lines = subprocess.run(["perf", "sched", "script", "-i", data], capture_output=True, text=True).stdout.splitlines()
            trace = parse_sched_script(lines)
            # split, per result as arrived: (source -> ingester read, -> process_event, -> process_result)
            arrived = np.array(summary["arrived"])
            to_worker = np.array([s[1] for s in summary["split"]])
            ingest = to_worker + np.array([s[2] for s in summary["split"]])
            read = arrived - ingest
            worked = read + to_worker
            use = core_use(trace, float(read.min()), float(arrived.max()))
            print(f"\nscan {k + 1} at {args.rate:,.0f} Hz: ingester -> reducer {percentiles(list(ingest))}; while the frames came: "
                  + ", ".join(f"{key} {share:.1%}" for key, share in sorted(use.items())))
            shown: list[float] = []
            for j in np.argsort(-(worked - read)):
                if len(shown) >= args.worst:
                    break
                if any(abs(read[j] - x) < 0.02 for x in shown):
                    continue
                shown.append(float(read[j]))
                a, b = read[j] - 0.004, worked[j] + 0.004
                print(f"\n  read {1e3 * (read[j] - read.min()):.1f} ms into the scan, at {summary['workers'][j]}'s process_event "
                      f"{1e3 * (worked[j] - read[j]):.1f} ms later, at the reducer {1e3 * ingest[j]:.1f} ms; {args.step_ms} ms per character")
                for tid, label in labels.items():
                    row = thread_row(trace, tid, a, b, step)
                    if row.strip(" ."):
                        print(f"  {label[:24]:>24} {row}")
                for core in sorted(trace.cores):
                    print(f"  {'core ' + str(core):>24} {core_row(trace, core, a, b, step, codes)}")
                marks = [" "] * round((b - a) / step)
                for t in (read[j], worked[j]):
                    marks[min(len(marks) - 1, int((t - a) / step))] = "^"
                print(f"  {'':>24} {''.join(marks)}")
    finally:
        pipe.close()
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
