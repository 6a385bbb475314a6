"""One look at the whole machine's CPU time (``/proc/stat``, Linux), shared by the benchmarks."""

from __future__ import annotations

import os
import time

#: (wall time, CPU time of all cores so far, of which idle or waiting for I/O), in seconds
MachineSample = tuple[float, float, float]


def machine_sample() -> MachineSample:
    """The first line of ``/proc/stat`` (all cores; idle includes iowait), with the wall time.
    Raises OSError where there is none."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return time.time(), sum(ticks) / tick, (ticks[3] + ticks[4]) / tick
