"""The latency-floor benchmark's framework-free pipeline delivers every event, in bursts and
paced, and spends the CPU it is given (figures come from the bench, not from here)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bench.bench_latency_floor import cpu_seconds, sched_stats, thread_kind
from bench.bench_pipeline import stins_messages
from bench.shaped_pipeline import Costs, ShapedPipeline, iterations_per_us


def _cpu(pids: tuple[int, ...]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


@pytest.mark.e2e
def test_every_event_reaches_the_reducer_once_per_scan_and_after_its_send() -> None:
    pipe = ShapedPipeline(Costs(), 2, iterations_per_us(rounds=3))
    try:
        for rate in (None, 2000.0, None):  # the pipeline is reused: a scan's STOP must not end it
            s = pipe.scan(stins_messages(300, 2048), rate)
            assert len(s["latency"]) == len(s["ingest_latency"]) == 300
            # read after sent, processed after read (one clock: the wall clock of this host)
            assert all(total >= ingest >= 0 for total, ingest in zip(s["latency"], s["ingest_latency"]))
    finally:
        pipe.close()


@pytest.mark.e2e
def test_the_workers_spend_what_they_are_given() -> None:
    iters = iterations_per_us(rounds=3)
    msgs = stins_messages(400, 2048)
    spent = {}
    for worker_us in (0.0, 2000.0):  # 2 ms per event: 0.8 s over 400 events, far above the noise
        pipe = ShapedPipeline(Costs(worker_us=worker_us), 2, iters)
        try:
            before = _cpu(pipe.pids()["workers"])
            pipe.scan(msgs, None)
            spent[worker_us] = _cpu(pipe.pids()["workers"]) - before
        finally:
            pipe.close()
    # the loop is calibrated at its fastest: a slower core spends more, never much less
    assert spent[2000.0] - spent[0.0] > 0.5 * 400 * 2000e-6



def test_the_scheduler_view_counts_the_cpu_of_a_thread_of_this_process() -> None:
    spun, release = threading.Event(), threading.Event()

    def spin() -> None:
        end = time.thread_time() + 0.05  # 50 ms on a core, however long it waits for one
        while time.thread_time() < end:
            pass
        spun.set()
        release.wait()  # alive (and counted) while the test reads

    before = sched_stats((os.getpid(),))["main"]
    t = threading.Thread(target=spin)
    t.start()
    try:
        assert spun.wait(30)
        after = sched_stats((os.getpid(),))["main"]
    finally:
        release.set()
        t.join()
    assert after[0] - before[0] >= 45e6  # ns: the spinning thread's 50 ms, less clock rounding
    assert after[1] >= before[1] >= 0 and after[2] > before[2]  # this thread waited for it, and it waits now
    assert thread_kind("ZMQbg/IO/0") == "io" and thread_kind("python") == "main"
