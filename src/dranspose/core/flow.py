"""Flow control that follows the data (pure, no I/O, no clock: callers pass ``now``).

Credits: how many events the controller may have in flight at one worker. Too few and the
worker idles while its completion report travels to the controller and the next assignment
travels to the ingester and on to the worker (the control round trip), while the ingester
holds frames for their routes; too many and data queues in front of the worker (memory,
latency, and more events at risk if it dies).

:class:`CreditGauge` gives a worker as many credits as it can hold, from what the worker
reports with its completion batches (cumulative: events processed, seconds busy, payload
bytes), recomputed at every report:

- the memory bound: ``memory_bytes`` / payload bytes per event;
- the backlog bound: ``max_backlog_s`` / the worker's time per event ``svc`` (busy seconds per
  event, averaged with the previous estimate weighted as ``svc_prior_events`` events: a report
  of a few events, mostly a pass's fixed cost, moves it little): never more queued work than
  that in front of it;
- ``ceiling``.

Before its events are measured (a report of at least ``min_events`` after its first) a worker
has ``initial`` credits, or those it ended its previous scan over the same streams with
(``controller/credits.py``). A quarter of a second of the worker's own work covers the control
round trip many times over (a few milliseconds, tens on two loaded cores), so the credits are not sized
from the round trip: sized from it (earlier releases: twice the measured round trip at the
worker's speed, growing from 32 by doubling, within 50 ms of its work), they ran short whenever
the round trip stretched under load, and at 80% of the maximum rate the ingester held frames for
their routes in most paced scans (docs/performance.md, *Credits at their bound*).

The round trip is still measured, for the status page: held back by credits with a busy
fraction ``b < 1`` (busy seconds / wall seconds over an interval of at least ``min_interval_s``),
a worker reports when half its ``C`` credits wait in the report (``Worker._credits_wait``),
works through the other half while the report travels, then holds no assigned event until the
round trip ``R`` brings more: a cycle completes ``C / 2`` events and starves ``C * s / (2 * r)``,
with ``r`` its completion rate and ``s`` the fraction of the interval it held none (its reported
seconds *starved* of assignments). So ``R = C / 2 * (s / r + svc)``. A worker that waited only
for data (assigned events whose frames had not come yet: a paced detector) has ``s = 0``: no
round trip is measured. Workers that do not report ``s`` count all their idle time: ``s = 1 - b``.

:class:`ReportPolicy` decides when a worker sends its completion batch: when the batch is
full, as soon as the worker runs out of work (the controller can assign at once), and at the
latest ``max_delay_s`` after the oldest unreported completion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FlowLimits:
    """Bounds of the credit gauge (the defaults are the product: no tuning needed)."""

    initial: int = 32  # credits before anything is measured
    floor: int = 4
    ceiling: int = 4096
    memory_bytes: int = 256 << 20  # payload bytes in flight per worker at most
    max_backlog_s: float = 0.25  # queued work per worker at most, in seconds of its own time (latency)
    min_interval_s: float = 0.02  # shortest interval a round trip is measured over
    min_events: int = 4  # fewest completions a measurement is taken over
    saturated: float = 0.9  # busy fraction above which the worker is the bottleneck (no round trip measured)
    svc_prior_events: int = 64  # weight, in events, of the time per event measured so far against a new report's

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.initial <= self.ceiling:
            raise ValueError(f"need 1 <= floor <= initial <= ceiling, got {self.floor}, {self.initial}, {self.ceiling}")
        if self.memory_bytes < 1 or self.max_backlog_s <= 0 or self.min_interval_s < 0:
            raise ValueError("memory_bytes and max_backlog_s must be positive, min_interval_s not negative")
        if self.svc_prior_events < 0:
            raise ValueError(f"svc_prior_events must be >= 0 (0: every report measured alone), got {self.svc_prior_events}")


@dataclass
class Sample:
    """One worker's cumulative counters as reported (processed events, busy seconds, bytes,
    seconds starved of assignments: None from a worker that does not count them)."""

    now: float
    events: int
    busy_s: float
    nbytes: int
    starved_s: float | None = None


@dataclass
class CreditGauge:
    """The credits of one worker during one scan. ``observe`` each report, read ``credits``."""

    limits: FlowLimits = field(default_factory=FlowLimits)
    credits: int = 0
    blocked: bool = False  # assignment was held back by this worker since the last measurement
    svc_s: float | None = None  # measured seconds per event
    event_bytes: float | None = None  # measured payload bytes per event
    round_trip_s: float | None = None  # last estimate of the control round trip, for the status (may come from an earlier scan)
    _base: Sample | None = None
    _svc_at_base: float | None = None  # svc_s as of ``_base`` (short reports re-measure from there)

    def __post_init__(self) -> None:
        if self.credits <= 0:
            self.credits = self.limits.initial

    def held_back(self) -> None:
        """The controller wanted to assign to this worker but its credits were used up (the
        round trip is measured over such intervals)."""
        self.blocked = True

    def cap(self) -> int:
        """The largest credit count the memory and backlog bounds allow now."""
        lim = self.limits
        cap = lim.ceiling
        if self.event_bytes:
            cap = min(cap, int(lim.memory_bytes // self.event_bytes))
        if self.svc_s:
            cap = min(cap, int(lim.max_backlog_s / self.svc_s))
        return max(lim.floor, cap)

    def _blended_svc(self, measured: float, events: int) -> float:
        """The time per event the bounds use: the estimate of the last full measurement
        (``_base``; none: ``measured`` alone) worth ``svc_prior_events`` events, averaged with
        the ``events`` since (``measured`` each), so that a report of few events moves it
        little. Such a report's busy time is mostly a pass's fixed work (the poll, control
        messages, the report itself): in a paced 24 kHz scan 5 events over 2.3 ms read 312 us
        each against 30-55 us over the hundreds of the reports around it, and that one report
        cut the worker's credits from 906 to 160 (the backlog bound of that release, 50 ms); the
        ingester then held frames for their assignments until the credits grew back."""
        previous, weight = self._svc_at_base, self.limits.svc_prior_events
        if previous is None:
            return measured
        return (weight * previous + events * measured) / (weight + events)

    def observe(self, sample: Sample) -> int:
        """Take one report (cumulative counters); returns the credits from now on: the bound
        at the measured event size and speed (``initial`` or the carried credits until a
        measurement)."""
        base = self._base
        if base is None or sample.events < base.events or sample.busy_s < base.busy_s or sample.nbytes < base.nbytes or (
            sample.starved_s is not None and base.starved_s is not None and sample.starved_s < base.starved_s
        ):
            self._base = sample  # first report, or the worker restarted its counters
            return self.credits
        dn = sample.events - base.events
        dt = sample.now - base.now
        if dn < self.limits.min_events:
            return self.credits  # keep accumulating
        busy = sample.busy_s - base.busy_s
        svc = max(busy / dn, 1e-7)  # this interval's own time per event
        self.svc_s = self._blended_svc(svc, dn)
        self.event_bytes = max((sample.nbytes - base.nbytes) / dn, 1.0)
        if dt >= self.limits.min_interval_s:  # long enough to measure the round trip over
            fraction = min(1.0, busy / dt) if dt > 0 else 1.0
            if self.blocked and fraction < self.limits.saturated:
                waiting = _starved_fraction(base, sample, dt, 1.0 - fraction)
                if waiting > 0:  # it ran out of assigned events: the credits are what it waited for
                    self.round_trip_s = self.credits / 2 * (waiting / (dn / dt) + svc)
            self.blocked = False
            self._base, self._svc_at_base = sample, self.svc_s
        self.credits = self.cap()
        return self.credits


def _starved_fraction(base: Sample, sample: Sample, dt: float, idle: float) -> float:
    """Share of the interval the worker held no assigned event; ``idle`` (all its idle time)
    when it does not count that, and never more than ``idle``."""
    if sample.starved_s is None or base.starved_s is None:
        return idle
    return min(idle, (sample.starved_s - base.starved_s) / dt)


@dataclass
class ReportPolicy:
    """When a worker sends its completion batch (see the module docstring). Reports for
    running out of work are at least ``min_gap_s`` apart, so a worker that idles between
    every event does not turn into one report (and one controller round) per event."""

    batch: int = 64
    max_delay_s: float = 0.01
    min_gap_s: float = 0.001
    oldest: float | None = None  # time of the oldest unreported completion
    last_sent: float = -math.inf

    def completed(self, now: float) -> None:
        """One more completion waits to be reported."""
        if self.oldest is None:
            self.oldest = now

    def due(self, pending: int, idle: bool, now: float) -> bool:
        """Send now? ``pending`` completions wait; ``idle``: no more data is queued here."""
        if pending <= 0:
            return False
        if pending >= self.batch:
            return True
        if idle and now - self.last_sent >= self.min_gap_s:
            return True
        return self.oldest is not None and now - self.oldest >= self.max_delay_s

    def timeout(self, pending: int, now: float, starving: bool = True) -> float | None:
        """Seconds until a report can fall due without new input (None: nothing pending);
        ``starving``: running dry would make it due (else only its age can)."""
        if pending <= 0:
            return None
        by_gap = self.last_sent + self.min_gap_s - now
        by_age = (self.oldest + self.max_delay_s - now) if self.oldest is not None else by_gap
        return max(0.0, min(by_gap, by_age) if starving else by_age)

    def sent(self, now: float) -> None:
        self.oldest = None
        self.last_sent = now

    def failed(self, now: float, retry_s: float = 0.5) -> None:
        """The report could not be sent: not due by age or idleness before ``retry_s``."""
        self.last_sent = now + retry_s - self.min_gap_s
        self.oldest = now + retry_s - self.max_delay_s


@dataclass
class Coalescer:
    """Fewer wake-ups per event when messages come fast: a loop that just handled fewer than
    ``target`` messages, arriving so close that ``min_more`` more come within ``linger_s``
    (at least 4 kHz with the defaults), waits up to ``linger_s`` before its next read, so that
    one pass (and one packed message to each process behind it) carries several events.
    Messages that come slower never wait: no latency is added at moderate rates, and at full
    speed every read finds ``target`` or more queued and nothing waits either. ``target`` must
    not exceed what one pass reads, or a loop would wait after every full pass.

    The defaults come from paced 2 kB scans on two cores (p50 / p99 source -> reducer, two
    runs each): 1 ms and 16 messages gave 9.6-11 / 148-149 ms at 16 kHz and 54-165 / 309-517
    ms at 20 kHz; 2 ms and 64 gave 4.0-8.9 / 33-132 ms and 16-25 / 97-156 ms, for 1 ms more
    p50 at 8 kHz (2.5 instead of 1.5 ms). 4 ms and 128 (more than a pass reads) saturated at
    16 kHz.

    ``observe`` each pass (messages read, seconds since the previous pass started); ``pause``
    is the sleep before the next read."""

    linger_s: float = 0.002
    target: int = 64
    min_more: int = 8  # wait only when at least this many more messages come within linger_s
    interval_s: float | None = None  # smoothed seconds between messages
    last: int = 0  # messages read by the last pass

    def observe(self, received: int, cycle_s: float) -> None:
        self.last = received
        if received <= 0:
            self.interval_s = None  # a pass without data: the rate is unknown again
            return
        gap = max(cycle_s, 0.0) / received
        self.interval_s = gap if self.interval_s is None else 0.7 * self.interval_s + 0.3 * gap

    def pause(self) -> float:
        gap = self.interval_s
        if gap is None or self.last >= self.target or gap * self.min_more > self.linger_s:
            return 0.0
        return min(self.linger_s, gap * (self.target - self.last))
