"""The thread budget of this process for codecs (``nthreads=None``) and Numba kernels.

Reads the affinity mask, how busy other processes kept the CPUs this process may use since the
last look (``/proc/stat`` less this process's own CPU time; refreshed at most once a second)
and the number of worker processes on this host (told by the worker service, see
:func:`set_local_workers`); the arithmetic is :func:`dranspose.core.cpus.thread_budget`.
A neighbour is seen within a second or two of starting (the 1-minute load average of earlier
releases took most of a minute). Without ``/proc/stat`` the load average stands in.
``DRANSPOSE_THREADS=n`` fixes the budget.
"""

from __future__ import annotations

import os
import sys
import time

from dranspose.core.cpus import thread_budget

REFRESH_S = 1.0
MIN_SAMPLE_S = 0.2  # a shorter interval between two CPU samples is too noisy: the last figure stays
_state = {"workers": 1, "at": -1e9, "budget": 1}
# the last CPU sample (at: wall time, busy: CPU-seconds, own: this process's CPU-seconds) and
# "others": CPUs other processes kept busy over the interval before it (absent: not measured yet)
_sample: dict[str, float] = {}


def _allowed_set() -> set[int]:
    """The CPUs this process may run on (its affinity mask)."""
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def allowed_cpus() -> int:
    """CPUs this process may run on (its affinity mask)."""
    return len(_allowed_set())


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _busy_seconds(cpus: set[int]) -> float | None:
    """CPU-seconds the CPUs ``cpus`` spent busy since boot (``/proc/stat``), None without it."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().splitlines()
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
    busy = 0
    for line in lines:
        if not line.startswith(b"cpu") or line[3:4] == b" ":
            continue
        name, *fields = line.split()
        try:
            if int(name[3:]) not in cpus:
                continue
            values = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
        except ValueError:
            continue
        busy += sum(values) - values[3] - values[4]
    return busy / tick


def _others_busy(cpus: set[int], current: int) -> float:
    """CPUs (of ``cpus``) that other processes kept busy since the previous sample; the load
    average less this process's threads before the first interval or without ``/proc/stat``."""
    now, busy, own = time.monotonic(), _busy_seconds(cpus), time.process_time()
    last = dict(_sample)
    if busy is not None and not last:  # the first look: no interval yet
        _sample.update(at=now, busy=busy, own=own)
    elif busy is not None and now - last["at"] >= MIN_SAMPLE_S:
        others = max(0.0, (busy - last["busy"]) - (own - last["own"])) / (now - last["at"])
        _sample.update(at=now, busy=busy, own=own, others=others)
        return others
    elif busy is not None and "others" in last:  # too short to measure: the last figure stays
        return last["others"]
    return max(0.0, _load() - current)


def budget() -> int:
    """Threads this process may use now (cached for ``REFRESH_S``)."""
    fixed = os.environ.get("DRANSPOSE_THREADS")
    if fixed:
        try:
            return max(1, min(int(fixed), allowed_cpus()))
        except ValueError:
            pass
    now = time.monotonic()
    if now - float(_state["at"]) >= REFRESH_S:
        cpus = _allowed_set()
        others = _others_busy(cpus, int(_state["budget"]))
        _state["budget"] = thread_budget(len(cpus), int(_state["workers"]), others)
        _state["at"] = now
        _apply_numba(int(_state["budget"]))
    return int(_state["budget"])


def set_local_workers(n: int) -> int:
    """Tell the budget how many worker processes share this host; returns the new budget."""
    _state["workers"] = max(1, int(n))
    _state["at"] = -1e9
    return budget()


def _apply_numba(n: int) -> None:
    """Limit Numba's parallel regions to the budget (only when Numba is already loaded)."""
    numba = sys.modules.get("numba")
    if numba is None:
        return
    try:
        numba.set_num_threads(max(1, min(n, int(numba.config.NUMBA_NUM_THREADS))))
    except Exception:  # a Numba without a threading layer: leave it as it is
        pass
