"""The controller's credits per worker for one scan: fixed when the worker advertises a
capacity (``DRANSPOSE_WORKER_CAPACITY``), otherwise a :class:`~dranspose.core.flow.CreditGauge`
fed by the worker's completion reports (no I/O here; the scheduler calls it under its lock)."""

from __future__ import annotations

from typing import Any, Iterable

from dranspose.core.flow import CreditGauge, FlowLimits, Sample


class CreditBook:
    """``round_trips``: control round trips measured in the previous scan, by worker name (a
    worker of that name starts this scan showing it). ``carried``: credits to start a worker of
    that name at instead of ``limits.initial`` (:meth:`carried_credits` of the previous scan's
    book when the new scan reads the same streams)."""

    def __init__(self, limits: FlowLimits | None = None, round_trips: dict[str, float] | None = None,
                 carried: dict[str, int] | None = None) -> None:
        self.limits = limits or FlowLimits()
        self.gauges: dict[str, CreditGauge] = {}
        self.fixed: dict[str, int] = {}
        self.prior_round_trips = dict(round_trips or {})
        self.carried = dict(carried or {})

    def round_trips(self) -> dict[str, float]:
        """The round trip each adaptive worker of this scan knows (measured, or carried over),
        for the next scan's book; workers that left are forgotten."""
        return {name: g.round_trip_s for name, g in self.gauges.items() if g.round_trip_s is not None}

    def carried_credits(self) -> dict[str, int]:
        """Credits the next scan over the same streams starts each adaptive worker at: what it
        holds now (its bound at this scan's event size and speed), once this scan measured its
        events, never less than ``initial``. The same detectors make events of about the same
        size, so the new scan's first frames need not wait for reports to measure them (from 32
        credits, a scan's first 100-200 ms at 80% load ran 10-40 ms late while the ingester held
        frames for credits); its first measured report applies its own bounds."""
        return {name: max(self.limits.initial, g.credits) for name, g in self.gauges.items() if g.event_bytes is not None}

    def admit(self, name: str, advertised: Any) -> int:
        """Credits of a worker joining the scan; ``advertised`` is its state's ``capacity``."""
        if isinstance(advertised, int) and not isinstance(advertised, bool) and advertised > 0:
            self.fixed[name] = advertised
            self.gauges.pop(name, None)
            return advertised
        self.fixed.pop(name, None)
        gauge = self.gauges.get(name)
        if gauge is None:
            gauge = self.gauges[name] = CreditGauge(
                self.limits, credits=self.carried.get(name, 0), round_trip_s=self.prior_round_trips.get(name)
            )
        return gauge.credits

    def held_back(self, names: Iterable[str]) -> None:
        for name in names:
            gauge = self.gauges.get(name)
            if gauge is not None:
                gauge.held_back()

    def report(self, name: str, now: float, events: int | None, busy_s: float | None, nbytes: int | None,
               starved_s: float | None = None) -> int | None:
        """Apply one completion report's cumulative counters (validated by the report's
        decoder: non-negative numbers, or None when the worker does not send them); returns
        the worker's new credits when they changed."""
        gauge = self.gauges.get(name)
        if gauge is None or events is None or busy_s is None or nbytes is None:
            return None  # fixed credits, or a worker that does not report its counters: kept
        before = gauge.credits
        after = gauge.observe(Sample(now, events, busy_s, nbytes, starved_s))
        return after if after != before else None

    def view(self) -> dict[str, dict[str, Any]]:
        """Per worker: credits and what they were sized from (for /api/v1/status)."""
        out: dict[str, dict[str, Any]] = {name: {"credits": n, "fixed": True} for name, n in self.fixed.items()}
        for name, g in self.gauges.items():
            out[name] = {
                "credits": g.credits,
                "fixed": False,
                "seconds_per_event": g.svc_s,
                "bytes_per_event": g.event_bytes,
                "round_trip_s": g.round_trip_s,
            }
        return out
