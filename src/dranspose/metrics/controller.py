"""The controller's metrics, read at scrape time from the scheduler's state (no bookkeeping on
the scan's hot path). Whatever the components advertise flows in: every error category a
component counts in its ``errors`` dict, the age of its last heartbeat (its state's ``time``),
and its ingester stream counters.

Counters that the scheduler keeps per scan (completed, failed) are made monotonic here: the
totals of earlier scans are remembered (bounded) and added.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dranspose.services.loop_time import CoreTime

RATE_WINDOW = 10  # seconds: the window of dranspose_worker_events_per_second
MAX_SCANS = 1000  # earlier scans remembered for the monotonic totals
STREAM_COUNTERS = ("forwarded", "discarded", "malformed", "frame_mismatches")


class ScanTotals:
    """Monotonic totals over scans: the last value seen of each scan, summed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._past: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._base = (0, 0)  # totals of scans forgotten beyond MAX_SCANS

    def update(self, mapping: str | None, completed: int, failed: int) -> tuple[int, int]:
        with self._lock:
            if mapping is not None:
                old = self._past.get(mapping, (0, 0))
                self._past[mapping] = (max(old[0], completed), max(old[1], failed))
                self._past.move_to_end(mapping)
                while len(self._past) > MAX_SCANS:
                    _, (c, f) = self._past.popitem(last=False)
                    self._base = (self._base[0] + c, self._base[1] + f)
            return (self._base[0] + sum(c for c, _ in self._past.values()),
                    self._base[1] + sum(f for _, f in self._past.values()))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ControllerCollector(Collector):
    """Collects from a :class:`dranspose.services.controller.scheduler.Scheduler`."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.totals = ScanTotals()

    def collect(self) -> Iterator[Metric]:
        sched = self.scheduler
        progress = sched.progress()
        now = time.time()
        with sched.lock:
            comps = {kind: {n: dict(st) for n, st in group.items()} for kind, group in sched.components.items()}
            scan = sched.scan
            queue = {n: (w.in_flight, w.alive) for n, w in scan.workers.items()} if scan is not None else {}
            started, finished = sched.scan_started, sched.scan_finished
        completed, failed = int(progress.get("completed_events", 0)), int(progress.get("failed_events", 0))
        total_completed, total_failed = self.totals.update(progress.get("mapping_uuid"), completed, failed)
        yield from self._scan(progress, completed, failed, total_completed, total_failed, started, finished)
        yield from self._workers(comps.get("worker", {}), queue, sched.load([RATE_WINDOW]))
        yield from self._components(comps, now)
        yield from self._ingesters(comps.get("ingester", {}))

    def _scan(self, progress: dict[str, Any], completed: int, failed: int, total_completed: int, total_failed: int,
              started: float | None, finished: float | None) -> Iterator[Metric]:
        total = int(progress.get("total_events", 0))
        yield CounterMetricFamily("dranspose_events_completed", "Events completed by every worker they needed, over all scans",
                                  value=total_completed)
        yield CounterMetricFamily("dranspose_events_failed", "Events that failed (a worker died holding them, undeliverable), over all scans",
                                  value=total_failed)
        yield GaugeMetricFamily("dranspose_scan_events", "Events in the current scan's trigger map", value=total)
        yield GaugeMetricFamily("dranspose_scan_completed_events", "Events of the current scan completed", value=completed)
        yield GaugeMetricFamily("dranspose_scan_failed_events", "Events of the current scan failed", value=failed)
        yield GaugeMetricFamily("dranspose_scan_in_flight_events", "Events of the current scan assigned and not yet completed",
                                value=int(progress.get("in_flight", 0)))
        yield GaugeMetricFamily("dranspose_scan_progress_ratio", "Share of the current scan's events done (completed or failed)",
                                value=(completed + failed) / total if total else 0.0)
        yield GaugeMetricFamily("dranspose_scan_finished", "1 once the current scan finished (every finish() ran)",
                                value=1.0 if progress.get("finished") else 0.0)
        if started is not None:
            yield GaugeMetricFamily("dranspose_scan_start_time_seconds", "Unix time the current scan started", value=started)
        if finished is not None:
            yield GaugeMetricFamily("dranspose_scan_end_time_seconds", "Unix time the current scan finished", value=finished)

    def _workers(self, workers: dict[str, dict[str, Any]], queue: dict[str, tuple[int, bool]],
                 load: dict[str, Any]) -> Iterator[Metric]:
        rate = GaugeMetricFamily("dranspose_worker_events_per_second",
                                 f"Events processed per second by a worker over the last {RATE_WINDOW} s", labels=["worker"])
        depth = GaugeMetricFamily("dranspose_worker_queue_depth_events",
                                  "Events assigned to a worker and not yet completed (its queue)", labels=["worker"])
        processed = CounterMetricFamily("dranspose_worker_processed_events",
                                        "Events a worker processed since it started", labels=["worker"])
        waits = CounterMetricFamily("dranspose_worker_assignment_waits",
                                    "Events whose frames reached a worker before their assignment did", labels=["worker"])
        waited = CounterMetricFamily("dranspose_worker_assignment_wait_seconds",
                                     "Seconds such frames waited at a worker for their assignment, summed", labels=["worker"])
        for name in sorted(set(workers) | set(queue)):
            rate.add_metric([name], float(load.get(name, {}).get("events_per_s", {}).get(str(RATE_WINDOW), 0.0)))
            depth.add_metric([name], float(queue.get(name, (0, True))[0]))
            st = workers.get(name, {})
            for family, key in ((processed, "processed"), (waits, "assignment_waits"), (waited, "assignment_wait_s")):
                value = _num(st.get(key))
                if value is not None:
                    family.add_metric([name], value)
        yield from (rate, depth, processed, waits, waited)

    def _components(self, comps: dict[str, dict[str, dict[str, Any]]], now: float) -> Iterator[Metric]:
        up = GaugeMetricFamily("dranspose_component_up", "1 for every component with a live presence in Redis",
                               labels=["kind", "component", "host"])
        age = GaugeMetricFamily("dranspose_component_heartbeat_age_seconds",
                                "Seconds since the component last published its state (its heartbeat)",
                                labels=["kind", "component"])
        errors = CounterMetricFamily("dranspose_component_errors",
                                     "Errors a component counted, by category", labels=["kind", "component", "category"])
        loop = CounterMetricFamily("dranspose_data_loop_seconds",
                                   "Seconds a component's data loop spent on a core and runnable waiting for one",
                                   labels=["kind", "component", "state"])
        for kind, group in sorted(comps.items()):
            for name, st in sorted(group.items()):
                up.add_metric([kind, name, str(st.get("host", ""))], 1.0)
                stamp = _num(st.get("time"))
                if stamp is not None:
                    age.add_metric([kind, name], max(0.0, now - stamp))
                spent = CoreTime.from_state(st.get("data_loop"))
                if spent is not None:
                    loop.add_metric([kind, name, "on_core"], spent.on_core_s)
                    loop.add_metric([kind, name, "waiting_for_core"], spent.waiting_for_core_s)
                errs = st.get("errors")
                if isinstance(errs, dict):
                    for category, count in sorted(errs.items()):
                        value = _num(count)
                        if value is not None:
                            errors.add_metric([kind, name, str(category)], value)
        yield from (up, age, errors, loop)

    def _ingesters(self, ingesters: dict[str, dict[str, Any]]) -> Iterator[Metric]:
        families = {
            key: CounterMetricFamily(f"dranspose_ingester_frames_{key}", f"Frames an ingester {key.replace('_', ' ')} per stream",
                                     labels=["ingester", "stream"])
            for key in STREAM_COUNTERS
        }
        waited = CounterMetricFamily(
            "dranspose_ingester_assignment_wait_seconds",
            "Seconds an ingester held frames it had read with no assignment for them (flow control) per stream",
            labels=["ingester", "stream"],
        )
        for name, st in sorted(ingesters.items()):
            stats = st.get("stream_stats")
            if not isinstance(stats, dict):
                continue
            for stream, values in sorted(stats.items()):
                if not isinstance(values, dict):
                    continue
                for key, fam in families.items():
                    value = _num(values.get(key))
                    if value is not None:
                        fam.add_metric([name, str(stream)], value)
                seconds = _num(values.get("assignment_wait_s"))
                if seconds is not None:
                    waited.add_metric([name, str(stream)], seconds)
        yield from families.values()
        yield waited


def controller_registry(scheduler: Any) -> CollectorRegistry:
    """A registry holding the controller's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(scheduler))
    return registry
