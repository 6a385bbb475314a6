"""The reducer's metrics: results processed, the time of the user's ``process_result``, errors
by category, and its HTTP requests (HDF REST, viewer, feedback) through :class:`HttpMetrics`.

The data loop only calls :meth:`ReducerMetrics.observe_result`: a bucket count in a plain list
(~0.15 us; a ``prometheus_client.Histogram`` observation takes a lock for its bucket and one for
its sum, ~0.75 us, a tenth of the reducer's time per result in a 2 kB burst). Everything is read at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dranspose.metrics.http import HttpMetrics

PROCESS_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class LoopHistogram(Collector):
    """A histogram written by one thread (the data loop) without locks, read at scrape time.

    ``observe`` adds to one bucket count (the first bound >= the value, as Prometheus' ``le``)
    and to the sum; ``collect`` reports cumulative buckets. A scrape may see an observation in
    its bucket and not yet in the sum (never a lost one: only the data loop writes)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        if list(buckets) != sorted(buckets) or len(set(buckets)) != len(buckets):
            raise ValueError("buckets must be strictly increasing")
        self.name, self.documentation = name, documentation
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def collect(self) -> Iterator[Metric]:
        counts, total = list(self.counts), self.sum
        cumulative, running = [], 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), counts):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=total)


class _ReducerCollector(Collector):
    def __init__(self, reducer: Any) -> None:
        self.reducer = reducer

    def collect(self) -> Iterator[Metric]:
        r = self.reducer
        yield CounterMetricFamily("dranspose_reducer_results_processed", "Results passed to process_result since the reducer started",
                                  value=int(r.total_processed))
        processed = GaugeMetricFamily("dranspose_reducer_scan_results",
                                      "Results of the current scan processed, by the worker that sent them", labels=["worker"])
        for worker, count in sorted(dict(r.processed).items()):
            processed.add_metric([str(worker)], int(count))
        yield processed
        yield CounterMetricFamily("dranspose_reducer_stale_results", "Results dropped because they belonged to an earlier scan",
                                  value=int(r.stale))
        yield CounterMetricFamily("dranspose_reducer_result_passes",
                                  "Data-loop passes that read results (results processed / passes: results per pass)",
                                  value=int(r.result_passes))
        errors = CounterMetricFamily("dranspose_reducer_errors", "Errors the reducer counted, by category", labels=["category"])
        for category, count in sorted(dict(r.errors).items()):
            errors.add_metric([str(category)], int(count))
        yield errors


class ReducerMetrics:
    """The reducer's registry: its collector, the ``process_result`` histogram and HTTP metrics."""

    def __init__(self, reducer: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ReducerCollector(reducer))
        self.process_time = LoopHistogram("dranspose_reducer_process_result_seconds",
                                          "Time spent in the user's process_result per result", PROCESS_BUCKETS)
        self.registry.register(self.process_time)
        self.http = HttpMetrics(self.registry)
        self.observe_result = self.process_time.observe  # the data loop's one call per result
