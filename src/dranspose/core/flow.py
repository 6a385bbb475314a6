"""Flow control that follows the data (pure, no I/O, no clock: callers pass ``now``).

Credits: how many events the controller may have in flight at one worker. Too few and the
worker idles while its completion report travels to the controller and the next assignment
travels to the ingester and on to the worker (the control round trip); too many and data
queues in front of the worker (memory, latency, and more events at risk if it dies).

:class:`CreditGauge` sizes the credits of one worker from what the worker reports with its
completion batches (cumulative: events processed, seconds busy, payload bytes) and from
whether the controller had to hold back assignment because this worker had no credit left:

- Over an interval the controller sees the completion rate ``r`` and the worker's busy
  fraction ``b`` (busy seconds / wall seconds); ``svc = busy / events`` is its time per event
  (for the bounds, averaged with the previous estimate weighted as ``svc_prior_events``
  events: a report of a few events, mostly a pass's fixed cost, moves it little).
- Held back by credits with ``b < 1``, a worker reports when half its ``C`` credits wait in
  the report (``Worker._credits_wait``), works through the other half while the report
  travels, then holds no assigned event until the control round trip ``R`` brings more: a
  cycle completes ``C / 2`` events and starves ``C * s / (2 * r)``, with ``s`` the fraction
  of the interval it held none (its reported seconds *starved* of assignments). So
  ``R = C / 2 * (s / r + svc)``: the starved time alone is only the part of ``R`` that the
  unreported half left open. A worker that waited only for data (assigned events whose
  frames had not come yet: a paced detector) has ``s = 0``: its credits are not what limits
  it and no round trip is measured. Workers that do not report ``s`` count all their idle
  time: ``s = 1 - b``.
- Credits that cover that round trip at the worker's own speed: ``C' = gain * R / svc + 1``
  (with ``gain`` 2: ``C' = C * (1 + s / b) + 1``, more credits for as long as it starves).

Between measurements (reports closer than ``min_interval_s``) the credits double while
assignment waits on an unsaturated worker (slow start: a scan that starts at full rate reaches
its credits within a few reports); when a round trip is known already (measured earlier in the
scan, or carried over from the worker's previous scan: the control path is the same) they
jump to cover it at once. Credits only grow within a scan (a scan starts again from
``initial``, its event size not known yet, or over the same streams as the previous scan from
the credits that scan ended with: see ``controller/credits.py``) and are capped, at every
report, by a memory bound (``memory_bytes / bytes per event``), by a backlog in time (``max_backlog_s /
svc``: never more queued work than that) and by ``ceiling``.

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
    max_backlog_s: float = 0.05  # queued work per worker at most, in seconds of its own time (latency)
    gain: float = 2.0  # multiple of the measured round trip covered
    min_interval_s: float = 0.02  # shortest interval a measurement is taken over
    min_events: int = 4  # fewest completions a measurement is taken over
    saturated: float = 0.9  # busy fraction above which the worker is the bottleneck
    svc_prior_events: int = 64  # weight, in events, of the time per event measured so far against a new report's

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.initial <= self.ceiling:
            raise ValueError(f"need 1 <= floor <= initial <= ceiling, got {self.floor}, {self.initial}, {self.ceiling}")
        if self.memory_bytes < 1 or self.max_backlog_s <= 0 or self.gain < 1 or self.min_interval_s < 0:
            raise ValueError("memory_bytes, max_backlog_s must be positive and gain >= 1")
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
    round_trip_s: float | None = None  # last estimate of the control round trip (may come from an earlier scan)
    _base: Sample | None = None
    _svc_at_base: float | None = None  # svc_s as of ``_base`` (short reports re-measure from there)

    def __post_init__(self) -> None:
        if self.credits <= 0:
            self.credits = self.limits.initial

    def held_back(self) -> None:
        """The controller wanted to assign to this worker but its credits were used up."""
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

    def _covering(self, round_trip_s: float) -> int:
        """Credits that keep the worker busy through ``gain`` round trips at its measured speed."""
        assert self.svc_s is not None
        return math.ceil(self.limits.gain * round_trip_s / self.svc_s) + 1

    def _blended_svc(self, measured: float, events: int) -> float:
        """The time per event the bounds use: the estimate of the last full measurement
        (``_base``; none: ``measured`` alone) worth ``svc_prior_events`` events, averaged with
        the ``events`` since (``measured`` each), so that a report of few events moves it
        little. Such a report's busy time is mostly a pass's fixed work (the poll, control
        messages, the report itself): in a paced 24 kHz scan 5 events over 2.3 ms read 312 us
        each against 30-55 us over the hundreds of the reports around it, and that one report
        cut the worker's credits from 906 to 160 (the backlog bound); the ingester then held
        frames for their assignments until slow start restored them."""
        previous, weight = self._svc_at_base, self.limits.svc_prior_events
        if previous is None:
            return measured
        return (weight * previous + events * measured) / (weight + events)

    def observe(self, sample: Sample) -> int:
        """Take one report (cumulative counters); returns the credits from now on."""
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
        fraction = min(1.0, busy / dt) if dt > 0 else 1.0
        if dt < self.limits.min_interval_s:
            # too short to measure the round trip (the interval keeps accumulating): slow
            # start, doubling while assignment waits on an unsaturated worker, so a scan
            # reaches its credits within a few reports instead of a few measurements
            if self.blocked and fraction < self.limits.saturated:
                self.credits *= 2
                if self.round_trip_s is not None:  # known: no need to find it by doubling
                    self.credits = max(self.credits, self._covering(self.round_trip_s))
                self.blocked = False
            self.credits = max(self.limits.floor, min(self.credits, self.cap()))
            return self.credits
        if self.blocked and fraction < self.limits.saturated:
            waiting = _starved_fraction(base, sample, dt, 1.0 - fraction)
            if waiting > 0:  # it ran out of assigned events: the credits are what it waits for
                self.round_trip_s = self.credits / 2 * (waiting / (dn / dt) + svc)
                self.credits = max(self.credits, self._covering(self.round_trip_s))
        self.credits = max(self.limits.floor, min(self.credits, self.cap()))
        self.blocked = False
        self._base, self._svc_at_base = sample, self.svc_s
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
