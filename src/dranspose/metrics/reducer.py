"""The reducer's metrics: results processed, the time of the user's ``process_result``, errors
by category, and its HTTP requests (HDF REST, viewer, feedback) through :class:`HttpMetrics`.

The data loop only calls :meth:`ReducerMetrics.observe_result` (one histogram observation,
about a microsecond); everything else is read from the reducer at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dranspose.metrics.http import HttpMetrics

PROCESS_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


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
        errors = CounterMetricFamily("dranspose_reducer_errors", "Errors the reducer counted, by category", labels=["category"])
        for category, count in sorted(dict(r.errors).items()):
            errors.add_metric([str(category)], int(count))
        yield errors


class ReducerMetrics:
    """The reducer's registry: its collector, the ``process_result`` histogram and HTTP metrics."""

    def __init__(self, reducer: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ReducerCollector(reducer))
        self.process_time = Histogram("dranspose_reducer_process_result_seconds",
                                      "Time spent in the user's process_result per result", registry=self.registry,
                                      buckets=PROCESS_BUCKETS)
        self.http = HttpMetrics(self.registry)

    def observe_result(self, seconds: float) -> None:
        self.process_time.observe(seconds)
