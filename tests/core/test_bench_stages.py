"""The pipeline benchmark's stage report: p50 per stage, and where the slowest 1% waited."""

from __future__ import annotations

import os
import re
import time
from typing import Any

from bench import bench_pipeline
from bench.bench_pipeline import (cpu_line, episodes, held_line, load_line, machine_busy, process_cpu_s, stages, waiting_line,
                                  worker_wait_line)
from bench.machine import machine_sample


def slowest(report: str) -> dict[str, float]:
    tail = report.split("slowest 1%:")[1]
    return {name: float(value) for name, value in re.findall(r"(\S+) ([\d.]+)", tail)}


def test_the_slowest_events_are_attributed_to_the_stage_they_waited_in() -> None:
    quick = [[0.001, 0.002, 0.003]] * 990
    late_at_worker = quick + [[0.001, 0.040, 0.003]] * 10
    late_at_reducer = quick + [[0.001, 0.002, 0.060]] * 10
    assert slowest(stages(late_at_worker)) == {"source->ingester": 1.0, "->worker": 40.0, "->reducer": 3.0}
    assert slowest(stages(late_at_reducer)) == {"source->ingester": 1.0, "->worker": 2.0, "->reducer": 60.0}
    assert "p50 source->ingester 1.00, ->worker 2.00, ->reducer 3.00 ms" in stages(late_at_worker)


def test_a_slow_read_alone_does_not_make_an_event_one_of_the_slowest() -> None:
    """The tail is ranked from the ingester's read: what the source -> ingester hop adds is
    the host's or the sender's, shown but not used to pick the events."""
    rows = [[0.001, 0.002, 0.003]] * 980 + [[0.050, 0.002, 0.003]] * 10 + [[0.001, 0.030, 0.003]] * 10
    assert slowest(stages(rows)) == {"source->ingester": 1.0, "->worker": 30.0, "->reducer": 3.0}


def test_events_without_a_read_time_are_ranked_from_the_send() -> None:
    rows = [[0.002, 0.003]] * 99 + [[0.002, 0.050]]
    assert slowest(stages(rows)) == {"source->worker": 2.0, "->reducer": 50.0}
    assert stages([]) == ""


class _Counter:
    """Stands in for a pipeline's published count of the ingester's wait for assignments."""

    def __init__(self, values: list[float | None]) -> None:
        self.values = values

    def assignment_wait_s(self) -> float | None:
        return self.values.pop(0)


def test_each_scan_shows_what_the_ingester_held_frames_for_assignments(monkeypatch: Any) -> None:
    monkeypatch.setattr(bench_pipeline, "HEARTBEAT_LAG_S", 0.0)
    held: dict[str, float | None] = {"this": 1.0, "against": None}
    pipe = _Counter([1.25, 1.25])
    assert held_line(pipe, held, "this") == "; the ingester held frames for assignments 250 ms"  # type: ignore[arg-type]
    assert held["this"] == 1.25
    assert held_line(pipe, held, "this") == "; the ingester held frames for assignments 0 ms"  # type: ignore[arg-type]
    assert held_line(pipe, held, "against") == ""  # type: ignore[arg-type]  # a version that does not count it
    assert held_line(_Counter([None]), {"this": 1.0}, "this") == ""  # type: ignore[arg-type]


class _Waits:
    """Stands in for a pipeline's published count of frames that waited at its workers for their assignment."""

    def __init__(self, values: list[tuple[int, float] | None]) -> None:
        self.values = values

    def worker_assignment_waits(self) -> tuple[int, float] | None:
        return self.values.pop(0)


def test_each_scan_shows_the_frames_that_waited_at_the_workers_for_their_assignment() -> None:
    seen: dict[str, tuple[int, float] | None] = {"this": (10, 0.5), "against": None}
    pipe = _Waits([(537, 6.0), (537, 6.0), (540, 6.0)])
    line = worker_wait_line(pipe, seen, "this")  # type: ignore[arg-type]
    assert line == "; frames before their assignment at the workers: 527 events, 5500 ms in all"
    assert seen["this"] == (537, 6.0)
    assert worker_wait_line(pipe, seen, "this") == "; frames before their assignment at the workers: 0 events, 0 ms in all"  # type: ignore[arg-type]
    assert worker_wait_line(pipe, seen, "against") == ""  # type: ignore[arg-type]  # a version that does not count them
    assert seen["against"] == (540, 6.0)  # counted from here on


class _Loops:
    """Stands in for a pipeline's published data-loop times (on a core, waiting for one)."""

    def __init__(self, values: list[dict[str, tuple[float, float]] | None]) -> None:
        self.values = values

    def data_loop_times(self) -> dict[str, tuple[float, float]] | None:
        return self.values.pop(0)


def test_each_scan_shows_how_long_the_data_loops_waited_for_a_core() -> None:
    first = {"ingester:i": (1.0, 1.0), "worker:w0": (2.0, 1.0), "worker:w1": (2.0, 1.0), "reducer:r": (1.0, 0.0)}
    later = {"ingester:i": (1.6, 1.4), "worker:w0": (2.5, 1.5), "worker:w1": (2.5, 2.5), "reducer:r": (2.0, 0.0)}
    seen: dict[str, Any] = {"this": first, "against": None}
    line = waiting_line(_Loops([later]), seen, "this")  # type: ignore[arg-type]
    # ingester 0.4 of 1.0 s; workers 0.5 + 1.5 of 3.0 s; reducer 0 of 1.0 s
    assert line == "; data loops waiting for a core: ingester 40%, worker 67%, reducer 0% of their runnable time"
    assert seen["this"] is later
    assert waiting_line(_Loops([later]), seen, "against") == ""  # type: ignore[arg-type]  # nothing to compare with yet
    assert waiting_line(_Loops([None]), {"this": first}, "this") == ""  # type: ignore[arg-type]  # a version without them


def test_late_results_are_grouped_into_episodes_and_attributed_at_their_peaks() -> None:
    quick = [0.001, 0.002, 0.003]
    rows = [quick] * 100
    rows += [[0.001, 0.012, 0.001], quick, [0.001, 0.030, 0.005], [0.001, 0.011, 0.001]]  # one episode, peak 35 ms
    rows += [quick] * 100  # more than `join` results apart: a second episode
    rows += [[0.001, 0.002, 0.015]]  # peak 17 ms, late at the reducer
    rows += [quick] * 10
    line = episodes(rows, threshold_s=0.010, join=50)
    assert line == ("; 2 episodes later than 10 ms, peaks 26.0 ms (worst 35.0), 2 results each; "
                    "at the peaks ->worker 16.0, ->reducer 10.0 ms")
    # closer than `join`: one episode of 105 results, its peak the 35 ms one
    assert episodes(rows, threshold_s=0.010, join=200).startswith("; 1 episodes later than 10 ms, peaks 35.0 ms (worst 35.0), 105 results")
    # the source -> ingester hop is not the pipeline's: a late read alone is no episode
    assert episodes([[0.050, 0.002, 0.003]] * 5) == "; no result later than 10 ms"
    assert episodes([[0.002, 0.050]] * 5) == ""  # no read times (older trees, 0.2.0)


def test_the_pipelines_cpu_is_read_from_proc_and_shown_per_event() -> None:
    me = os.getpid()
    before = process_cpu_s([me])
    t = time.process_time()
    while time.process_time() - t < 0.3:  # spend CPU in this process
        pass
    grown = process_cpu_s([me]) - before
    assert 0.2 <= grown <= 1.0
    with open("/proc/sys/kernel/pid_max") as fh:
        no_such_pid = int(fh.read()) + 1  # never a process
    assert process_cpu_s([no_such_pid]) == 0.0  # a process that is gone counts 0, no error
    assert cpu_line({"cpu_s": 0.6, "cpu_wall_s": 2.0, "results": 20_000}) == (
        "; the pipeline's processes used 30% of a core, 30 µs per event")
    assert cpu_line({"results": 20_000}) == ""  # a scan without the reading


def test_a_paced_scan_shows_its_cpu_per_event_against_the_maximums_and_how_busy_the_machine_was() -> None:
    summary = {"cpu_to_finish_s": 1.22, "results": 20_000, "machine_busy": 0.9666}
    assert load_line(summary, 46.0) == "; 61 µs per event to the finish, 1.33x the maximum's 46; the machine 97% busy"
    assert load_line(summary) == "; 61 µs per event to the finish; the machine 97% busy"  # no maximum taken (--latency-at)
    assert load_line({"results": 20_000}) == ""  # a scan without the readings
    assert load_line({"machine_busy": 0.5}) == "; the machine 50% busy"


def test_the_machine_is_busier_while_this_process_spends_cpu() -> None:
    """Read from ``/proc/stat``: one core kept busy for 0.3 s shows on the whole machine."""
    before = machine_sample()
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
    busy = machine_busy(before, machine_sample())
    assert busy is not None and busy >= 0.9 / os.cpu_count()  # type: ignore[operator]
    assert machine_busy(before, before) is None  # no time passed: no share


def test_paced_scans_are_labelled_by_their_rate_and_pooled() -> None:
    scans = [{"rate": 26603.2, "latency": [0.001, 0.002], "ingest_latency": [0.001], "split": [[0.1, 0.2, 0.3]]},
             {"rate": 24000.0, "latency": [0.003], "ingest_latency": [0.002, 0.004], "split": []}]
    rows = bench_pipeline.labelled(scans, "80% of a max just before")
    assert [label for label, _ in rows] == ["ours 80% of a max just before (26,603 Hz) #1",
                                            "ours 80% of a max just before (24,000 Hz) #2",
                                            "ours 80% of a max just before, 2 scans pooled"]
    pooled = rows[-1][1]
    assert pooled["latency"] == [0.001, 0.002, 0.003] and pooled["ingest_latency"] == [0.001, 0.002, 0.004]
    assert pooled["split"] == [[0.1, 0.2, 0.3]]
    assert [label for label, _ in bench_pipeline.labelled(scans[:1], "80% of max")] == ["ours 80% of max (26,603 Hz) #1"]
