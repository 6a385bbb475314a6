"""How many threads one process may use for codecs and kernels (pure, no I/O).

A node runs many worker processes; their thread pools must not fight. The budget of one
process is its share of the CPUs it may run on (its affinity mask split between the worker
processes of the host), reduced by what other processes keep busy (measured CPU time beyond
the shares of this host's other workers), and never below one: with every core busy
the single-thread path runs, which needs no helper thread at all. Summed over the host's
workers the budgets never exceed the CPUs they may use.
"""

from __future__ import annotations

import math


#: CPUs others may keep busy before the budget counts them (daemons, kernel threads, a shell)
BACKGROUND_CPUS = 0.3


def thread_budget(allowed_cpus: int, local_workers: int, others_busy: float) -> int:
    """Threads for one of ``local_workers`` processes sharing ``allowed_cpus`` CPUs, when the
    CPUs were kept busy ``others_busy`` (in CPUs, over the last second or so) by every process
    but this one. The host's other workers may use their share; only what other processes
    keep busy beyond that (less a little background) is taken from the free CPUs."""
    allowed = max(1, int(allowed_cpus))
    workers = max(1, int(local_workers))
    share = max(1, allowed // workers)
    if math.isfinite(others_busy):
        foreign = max(0.0, float(others_busy) - (workers - 1) * share - BACKGROUND_CPUS)
    else:
        foreign = float(allowed)
    free = allowed - math.ceil(foreign)
    return max(1, min(share, free // workers if free > 0 else 1))
