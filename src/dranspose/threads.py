"""The thread budget of this process for codecs (``nthreads=None``) and Numba kernels.

Reads the affinity mask and the load average (refreshed at most once a second) and the number
of worker processes on this host (told by the worker service, see :func:`set_local_workers`);
the arithmetic is :func:`dranspose.core.cpus.thread_budget`. ``DRANSPOSE_THREADS=n`` fixes it.
"""

from __future__ import annotations

import os
import sys
import time

from dranspose.core.cpus import thread_budget

REFRESH_S = 1.0
_state = {"workers": 1, "at": -1e9, "budget": 1}


def allowed_cpus() -> int:
    """CPUs this process may run on (its affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


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
        _state["budget"] = thread_budget(allowed_cpus(), int(_state["workers"]), _load(), int(_state["budget"]))
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
