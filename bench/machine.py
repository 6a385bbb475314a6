"""The whole machine as the benchmarks see it: its CPU time (``/proc/stat``, Linux) and how fast
it runs a plain Python loop now (:func:`host_speed`, the same loop :func:`spend` burns CPU with)."""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Callable

#: (wall time, CPU time of all cores so far, of which idle or waiting for I/O), in seconds
MachineSample = tuple[float, float, float]


def machine_sample() -> MachineSample:
    """The first line of ``/proc/stat`` (all cores; idle includes iowait), with the wall time.
    Raises OSError where there is none."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return time.time(), sum(ticks) / tick, (ticks[3] + ticks[4]) / tick


#: loop steps one round of :func:`host_speed` times (5-10 ms a round on this kind of host)
SPEED_STEPS = 200_000


def host_speed(rounds: int = 3, steps: int = SPEED_STEPS) -> float:
    """How fast this host runs Python now: nanoseconds per step of a plain Python loop, the
    best of ``rounds`` (the least disturbed). On a shared virtual machine this moves with what
    the host's other tenants do: read every 5 s on an idle two-core machine, 26-30 ns per step
    in some readings and 40-47 in others, changing within seconds. A latency taken at a fixed rate is only comparable between readings of about
    the same speed."""
    return ns_per_step(spend, rounds, steps)


def ns_per_step(burn: Callable[[int], object], rounds: int, steps: int) -> float:
    """Nanoseconds per step of ``burn(steps)``, the best of ``rounds`` (the least disturbed)."""
    best = float("inf")
    for _ in range(max(1, rounds)):
        t0 = time.perf_counter()
        burn(steps)
        best = min(best, time.perf_counter() - t0)
    return best / steps * 1e9


def spend(steps: int) -> int:
    """Burn CPU: ``steps`` steps of the loop :func:`host_speed` times."""
    x = 0
    for i in range(steps):
        x += i
    return x


#: bytes of Python objects an :class:`ObjectWalk` reads through by default: as much as one
#: core's L2 cache here (1 MiB), so that the walk runs from it when its process kept the core
#: and from L3 or memory when other processes ran there meanwhile
WALK_BYTES = 1 << 20


class ObjectWalk:
    """Burn CPU the way Python code working through its data does, not in a loop that stays in
    the L1 cache like :func:`spend`: each step reads the next of ``nbytes`` worth of small
    dicts, linked in a shuffled cycle (one dict and its keys a step, at a place the previous
    step chose). What a step costs depends on what the core's caches still hold, as a data
    loop's pass does after other processes ran on its core. Made in the process that walks."""

    def __init__(self, nbytes: int = WALK_BYTES, seed: int = 1) -> None:
        n = max(2, nbytes // sys.getsizeof({"v": 0, "next": 0}))
        order = list(range(n))
        random.Random(seed).shuffle(order)
        self.nodes = [{"v": i, "next": 0} for i in range(n)]
        for a, b in zip(order, order[1:] + order[:1]):
            self.nodes[a]["next"] = b
        self.at = 0

    def __call__(self, steps: int) -> int:
        nodes, j, x = self.nodes, self.at, 0
        for _ in range(steps):
            node = nodes[j]
            x += node["v"]
            j = node["next"]
        self.at = j
        return x


def speed_note(now: float, reference: float) -> str:
    """``host 9.1 ns per loop step (the maximum's 7.5: 21% slower)``: a reading beside the one
    taken when the rate was set (``reference``)."""
    change = now / reference - 1.0
    trend = "slower" if change > 0 else "faster"
    return f"host {now:.1f} ns per loop step (the maximum's {reference:.1f}: {abs(change):.0%} {trend})"
