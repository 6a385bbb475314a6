"""The latency-floor benchmark's framework-free pipeline delivers every event, in bursts and
paced, and spends the CPU it is given (figures come from the bench, not from here)."""

from __future__ import annotations

import pytest

from bench.bench_latency_floor import cpu_seconds
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
