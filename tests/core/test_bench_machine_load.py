"""The benchmarks' view of the whole machine: its load during a scan (``/proc/stat``) and how fast
the host runs Python (``bench.machine.host_speed``)."""

from __future__ import annotations

import time

import pytest

from bench.bench_latency_floor import FULL, MachineLoad, busy_share, full_windows, machine_sample
from bench.machine import host_speed, speed_note


def samples(busy_per_step: list[float], step: float = 0.05, cores: int = 2) -> list[tuple[float, float, float]]:
    """Synthetic samples ``step`` apart: in step ``i`` the cores were ``busy_per_step[i]`` busy."""
    out, cpu, idle = [(100.0, 0.0, 0.0)], 0.0, 0.0
    for i, busy in enumerate(busy_per_step):
        cpu += cores * step
        idle += cores * step * (1.0 - busy)
        out.append((100.0 + (i + 1) * step, cpu, idle))
    return out


def test_the_busy_share_is_taken_between_the_samples_inside_the_window() -> None:
    s = samples([0.2, 0.2, 1.0, 1.0, 0.2, 0.2])  # at 100.0, 100.05, ... 100.30
    assert busy_share(s, 100.0, 100.3) == pytest.approx(0.2 * 4 / 6 + 2 / 6)
    assert busy_share(s, 100.1, 100.2) == pytest.approx(1.0)
    assert busy_share(s, 100.0, 100.1) == pytest.approx(0.2)
    assert busy_share(s, 100.31, 101.0) is None  # no sample there
    assert busy_share(s, 100.0, 100.01) is None  # one sample


def test_full_windows_count_the_tenths_of_a_second_at_95_percent_or_more() -> None:
    s = samples([0.5, 0.5, 1.0, 1.0, 0.9, 0.96, 0.96, 0.99])  # four 0.1 s windows: 0.5, 1.0, 0.93, 0.975
    assert FULL == 0.95
    assert full_windows(s, 100.0, 100.4) == pytest.approx(2 / 4)
    assert full_windows(s, 100.5, 101.0) is None


def test_the_machine_is_sampled_from_proc_stat() -> None:
    t, cpu, idle = machine_sample()
    assert abs(t - time.time()) < 60 and cpu > 0 and 0 <= idle <= cpu
    load = MachineLoad(interval=0.01)
    start = time.time()
    while len(load.samples) < 10:  # a busy loop (about 0.1 s): this process keeps a core
        sum(range(1000))
    load.stop()
    share = busy_share(load.samples, start - 1, time.time() + 1)
    assert share is not None and 0.0 < share <= 1.0
    assert "busy" in load.during(start - 1, time.time() + 1) and "full" in load.during(start - 1, time.time() + 1)
    assert load.during(0.0, 1.0) == "busy    ?, full    ?"


def test_the_host_speed_is_nanoseconds_per_loop_step() -> None:
    t0 = time.perf_counter()
    ns = host_speed(rounds=2, steps=100_000)
    took = time.perf_counter() - t0
    assert 1.0 < ns < 1000.0  # a CPython loop step: tens of ns on any core of these years
    assert ns * 1e-9 * 100_000 <= took  # the best round is no longer than both together


def test_a_speed_is_read_against_the_one_the_maximum_was_taken_at() -> None:
    assert speed_note(9.1, 7.5) == "host 9.1 ns per loop step (the maximum's 7.5: 21% slower)"
    assert speed_note(6.75, 7.5) == "host 6.8 ns per loop step (the maximum's 7.5: 10% faster)"
