"""Thread budgets that share a node: never more threads than CPUs, one when they are busy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose import threads
from dranspose.codecs import bslz4_compress, bslz4_decompress
from dranspose.codecs._common import norm_threads
from dranspose.core.cpus import thread_budget


@settings(max_examples=500, deadline=None)
@given(
    allowed=st.integers(1, 256),
    workers=st.integers(1, 64),
    load=st.floats(0, 1000, allow_nan=False),
    current=st.integers(1, 64),
)
def test_budget_shares_the_cpus(allowed: int, workers: int, load: float, current: int) -> None:
    n = thread_budget(allowed, workers, load, current)
    assert n >= 1
    assert n * workers <= max(allowed, workers)  # never more threads than cores in total
    assert thread_budget(allowed, workers, load + 1.0, current) <= n  # busier: never more
    if load >= allowed + workers * current:
        assert n == 1  # every core busy: the single-thread path


def test_idle_node_gives_the_share() -> None:
    assert thread_budget(16, 4, 0.0) == 4
    assert thread_budget(2, 1, 0.2) == 2
    assert thread_budget(2, 1, 0.2 + 2.0) == 1  # another CPU-bound process


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
