"""The reducer's lock-free ``process_result`` histogram exposes what prometheus_client's own
Histogram exposes for the same observations (bucket edges, counts, sum)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from dranspose.metrics.reducer import PROCESS_BUCKETS, LoopHistogram


def _exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, *PROCESS_BUCKETS, 10.0]),
                          st.floats(min_value=0, max_value=20, allow_nan=False)), max_size=60))
def test_same_exposition_as_prometheus_histogram(values: list[float]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hist = LoopHistogram("t_seconds", "doc", PROCESS_BUCKETS)
    ours.register(hist)
    ref = Histogram("t_seconds", "doc", registry=theirs, buckets=PROCESS_BUCKETS)
    for v in values:
        hist.observe(v)
        ref.observe(v)
    assert _exposition(ours) == _exposition(theirs)


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError):
        LoopHistogram("t_seconds", "doc", (0.1, 0.1, 1.0))
    with pytest.raises(ValueError):
        LoopHistogram("t_seconds", "doc", (1.0, 0.1))
