"""How many threads one process may use for codecs and kernels (pure, no I/O).

A node runs many worker processes; their thread pools must not fight. The budget of one
process is its share of the CPUs it may run on (its affinity mask split between the worker
processes of the host), reduced by what other processes keep busy (the load average beyond
what this host's workers account for themselves), and never below one: with every core busy
the single-thread path runs, which needs no helper thread at all. Summed over the host's
workers the budgets never exceed the CPUs they may use.
"""

from __future__ import annotations

import math


def thread_budget(allowed_cpus: int, local_workers: int, load: float, current: int = 1) -> int:
    """Threads for one of ``local_workers`` processes sharing ``allowed_cpus`` CPUs while the
    1-minute load average is ``load`` and each of them runs ``current`` threads."""
    allowed = max(1, int(allowed_cpus))
    workers = max(1, int(local_workers))
    share = max(1, allowed // workers)
    # runnable tasks beyond what our own workers account for (their threads, when busy)
    own = workers * max(1, int(current))
    others = max(0.0, float(load) - own) if math.isfinite(load) else float(allowed)
    free = allowed - math.ceil(others)
    return max(1, min(share, free // workers if free > 0 else 1))
