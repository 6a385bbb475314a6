"""Thread budgets that share a node: never more threads than CPUs, one when they are busy."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose import threads
from dranspose.codecs import bslz4_compress, bslz4_decompress
from dranspose.codecs._common import norm_threads
from dranspose.core.cpus import BACKGROUND_CPUS, thread_budget


@settings(max_examples=500, deadline=None)
@given(
    allowed=st.integers(1, 256),
    workers=st.integers(1, 64),
    others=st.floats(0, 1000, allow_nan=False),
)
def test_budget_shares_the_cpus(allowed: int, workers: int, others: float) -> None:
    n = thread_budget(allowed, workers, others)
    assert n >= 1
    assert n * workers <= max(allowed, workers)  # never more threads than cores in total
    assert thread_budget(allowed, workers, others + 1.0) <= n  # busier: never more
    share = max(1, allowed // workers)
    if others >= allowed + (workers - 1) * share + BACKGROUND_CPUS:
        assert n == 1  # every core busy: the single-thread path


def test_idle_node_gives_the_share() -> None:
    assert thread_budget(16, 4, 0.0) == 4
    assert thread_budget(2, 1, 0.2) == 2  # background
    assert thread_budget(2, 1, 1.0) == 1  # another CPU-bound process
    assert thread_budget(16, 4, 12.0) == 4  # the other three workers at their share
    assert thread_budget(16, 4, 13.0) == 3  # and one CPU-bound process besides


@pytest.mark.e2e  # a CPU-bound neighbour process
def test_a_new_neighbour_is_seen_within_seconds() -> None:
    threads.set_local_workers(1)
    time.sleep(1.1)
    threads.set_local_workers(1)  # measured over the last second: nothing else runs
    alone = threads.budget()
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = []
        for _ in range(5):
            time.sleep(1.05)
            seen.append(threads.budget())
            if seen[-1] <= max(1, alone - 1):
                break
        assert seen[-1] <= max(1, alone - 1), (alone, seen)
    finally:
        neighbour.kill()
        neighbour.wait()
    threads.set_local_workers(1)


def test_fixed_budget_and_codec_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DRANSPOSE_THREADS", "1")
    assert threads.budget() == 1 and norm_threads(None) == 1
    monkeypatch.setenv("DRANSPOSE_THREADS", "999")
    assert threads.budget() == threads.allowed_cpus()
    assert norm_threads(1000) == threads.allowed_cpus()
    monkeypatch.delenv("DRANSPOSE_THREADS")
    assert 1 <= threads.set_local_workers(3) <= threads.allowed_cpus()
    data = np.arange(1 << 16, dtype=np.uint32)
    assert np.array_equal(bslz4_decompress(bslz4_compress(data), np.uint32, data.shape), data)
    threads.set_local_workers(1)
