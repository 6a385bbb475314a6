"""Flow control: credits at the worker's bounds in bytes and time from its first measured
report, the round trip measured for the status; completion reports when the batch fills or the
worker runs out of work (hypothesis)."""

from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dranspose.core.flow import CreditGauge, FlowLimits, ReportPolicy, Sample
from dranspose.services.controller.credits import CreditBook


def drive(gauge: CreditGauge, svc: float, nbytes: int, rounds: int, report: Callable[[int], tuple[int, float]]) -> list[int]:
    """Feed ``gauge`` ``rounds`` reports of a worker held back by its credits; ``report(credits)``
    gives the events of the next report and the seconds they took. Returns the credits after each."""
    now, events, busy, total = 0.0, 0, 0.0, 0
    gauge.observe(Sample(now, events, busy, total))
    history = []
    for _ in range(rounds):
        n, seconds = report(gauge.credits)
        now += seconds
        events += n
        busy += n * svc
        total += n * nbytes
        gauge.held_back()
        history.append(gauge.observe(Sample(now, events, busy, total)))
    return history


def simulate(gauge: CreditGauge, svc: float, rtt: float, nbytes: int, rounds: int = 40) -> list[int]:
    """A worker limited by its credits: it works C * svc, then waits one round trip."""

    def report(c: int) -> tuple[int, float]:
        cycle = c * svc + rtt
        n = max(1, int(round(0.05 / cycle))) * c  # about 50 ms of cycles per report
        return n, n / c * cycle

    return drive(gauge, svc, nbytes, rounds, report)


def bound(limits: FlowLimits, svc: float, nbytes: float) -> int:
    """What the gauge's bounds allow a worker of ``svc`` seconds and ``nbytes`` bytes per event."""
    return max(limits.floor, min(limits.ceiling, int(limits.memory_bytes // nbytes), int(limits.max_backlog_s / svc)))


@settings(max_examples=200, deadline=None)
@given(
    svc=st.floats(1e-5, 1e-2),
    rtt=st.floats(1e-4, 5e-2),
    nbytes=st.integers(100, 64 << 20),
    memory=st.integers(1 << 20, 1 << 30),
)
def test_credits_sit_at_the_bounds_from_the_first_measurement(svc: float, rtt: float, nbytes: int, memory: int) -> None:
    limits = FlowLimits(memory_bytes=memory)
    gauge = CreditGauge(limits)
    history = simulate(gauge, svc, rtt, nbytes)
    cap = bound(limits, svc, nbytes)
    assert all(abs(c - cap) <= 1 for c in history)  # +-1: the measured time per event is a float sum
    assert all(limits.floor <= c <= limits.ceiling for c in history)


def half_reports(gauge: CreditGauge, svc: float, rtt: float, nbytes: int, rounds: int = 60) -> list[int]:
    """A worker as this project's worker runs (data always waiting): it reports when half its
    credits are done, works through the other half while the report travels, then holds no
    assigned event until the round trip ``rtt`` brings more; reports ~50 ms of cycles apart."""
    t = busy = starved = 0.0
    events = 0
    gauge.observe(Sample(t, 0, 0.0, 0, 0.0))
    history = []
    for _ in range(rounds):
        half = max(1, gauge.credits // 2)
        cycle = max(rtt, half * svc)  # one report to the next: the round trip, or the half's work if longer
        n = max(1, round(0.05 / cycle))
        t += n * cycle
        events += n * half
        busy += n * half * svc
        starved += n * max(0.0, rtt - half * svc)
        gauge.held_back()
        history.append(gauge.observe(Sample(t, events, busy, events * nbytes, starved)))
    return history


@settings(max_examples=200, deadline=None)
@given(svc=st.floats(1e-5, 1e-3), rtt=st.floats(1e-3, 3e-2), initial=st.sampled_from([4, 32, 128]))
def test_a_worker_starved_at_its_first_credits_gets_its_bound_and_its_round_trip_is_measured(svc: float, rtt: float, initial: int) -> None:
    # the round trip is the starved time plus the time the unreported half took: taken for the
    # starved time alone, it read short of the real one
    assume(initial // 2 * svc < rtt / 2)  # it starts out waiting for credits
    limits = FlowLimits(max_backlog_s=10.0, ceiling=1 << 20)
    gauge = CreditGauge(limits, credits=initial)
    history = half_reports(gauge, svc, rtt, 2048)
    assert all(abs(c - bound(limits, svc, 2048)) <= 1 for c in history)  # from the first measured report on
    assert gauge.credits // 2 * svc >= rtt  # so the unreported half covers the round trip: no more starving
    assert gauge.round_trip_s is not None and gauge.round_trip_s == pytest.approx(rtt, rel=0.05)


@settings(max_examples=100, deadline=None)
@given(svc=st.floats(1e-5, 1e-3))
def test_a_saturated_worker_gets_its_bound_and_no_round_trip(svc: float) -> None:
    gauge = CreditGauge()
    gauge.observe(Sample(0.0, 0, 0.0, 0))
    now = events = 0
    busy = 0.0
    for _ in range(20):
        now += 0.1
        events += int(0.1 / svc)
        busy += 0.099  # busy 99% of the time: the worker, not the credits, is the limit
        gauge.held_back()
        gauge.observe(Sample(now, events, busy, events * 1000))
    assert abs(gauge.credits - bound(gauge.limits, 0.099 / int(0.1 / svc), 1000)) <= 1  # a quarter second of its work
    assert gauge.round_trip_s is None  # it never waited for credits


def quick_reports(gauge: CreditGauge, svc: float, rtt: float, nbytes: int, rounds: int) -> list[int]:
    """A worker starting a scan at full rate: it reports when half its credits are done (then
    waits one round trip for more), so reports come far closer than ``min_interval_s``."""

    def report(c: int) -> tuple[int, float]:
        n = max(1, c // 2)
        return n, n * svc + rtt

    return drive(gauge, svc, nbytes, rounds, report)


def test_the_first_measured_report_takes_the_credits_to_the_bounds() -> None:
    limits = FlowLimits()
    svc, rtt = 20e-6, 1e-3  # reports every ~1-2 ms
    history = quick_reports(CreditGauge(limits), svc, rtt, 2048, rounds=3)
    assert history == [limits.ceiling] * 3  # 4,096 at once: 0.25 s / 20 us and 256 MiB / 2 kB are more
    capped = quick_reports(CreditGauge(limits), svc, rtt, 4 << 20, rounds=3)  # 4 MB events
    assert capped == [limits.memory_bytes // (4 << 20)] * 3  # the memory bound holds at every report
    slow = quick_reports(CreditGauge(limits), 1e-3, rtt, 2048, rounds=3)  # 1 ms per event
    assert slow == [int(limits.max_backlog_s / 1e-3)] * 3  # a quarter second of its work, not more


def test_credit_book_carries_round_trips_to_the_next_scan() -> None:
    first = CreditBook()
    first.admit("w0", None)
    first.admit("w1", None)
    first.admit("fixed", 8)
    first.gauges["w0"].round_trip_s = 0.004  # as measured during the scan
    assert first.round_trips() == {"w0": 0.004}
    second = CreditBook(FlowLimits(), first.round_trips())
    assert second.admit("w0", None) == FlowLimits().initial  # no credits carried: the event size is not known yet
    assert second.gauges["w0"].round_trip_s == 0.004
    second.admit("w2", None)
    assert second.gauges["w2"].round_trip_s is None
    assert CreditBook(FlowLimits(), second.round_trips()).prior_round_trips == {"w0": 0.004}
    third = CreditBook(FlowLimits(), second.round_trips())
    third.admit("w2", None)
    assert third.round_trips() == {}  # w0 did not join this scan: forgotten


def test_credit_book_carries_measured_credits() -> None:
    """A scan over the same streams starts each worker at the credits it ended the last one
    with (never below initial); workers whose events were never measured, and fixed
    capacities, carry nothing. The new scan's first measurement applies its own bounds."""
    limits = FlowLimits()
    first = CreditBook(limits)
    for name in ("many", "few", "unmeasured"):
        first.admit(name, None)
    first.admit("fixed", 8)
    first.gauges["many"].credits, first.gauges["many"].event_bytes = 4096, 2048.0
    first.gauges["few"].credits, first.gauges["few"].event_bytes = 6, 2048.0
    carried = first.carried_credits()
    assert carried == {"many": 4096, "few": limits.initial}
    second = CreditBook(limits, first.round_trips(), carried)
    assert second.admit("many", None) == 4096
    assert second.admit("unmeasured", None) == limits.initial and second.admit("new", None) == limits.initial
    assert second.admit("fixed", 8) == 8
    # 4 MB events in the new scan: the memory bound applies at its first measured report
    history = quick_reports(second.gauges["many"], 20e-6, 1e-3, 4 << 20, rounds=2)
    assert history == [limits.memory_bytes // (4 << 20)] * 2


def test_credits_never_pass_the_memory_bound_once_measured() -> None:
    limits = FlowLimits()
    for svc in (1e-5, 1e-4, 1e-3):
        for nbytes in (100, 2048, 1 << 20, 64 << 20):
            mem_cap = max(limits.floor, int(limits.memory_bytes // nbytes))
            for rtt in (0.0, 5 * svc * limits.initial):  # saturated, and waiting for credits
                assert all(c <= mem_cap for c in quick_reports(CreditGauge(limits), svc, rtt, nbytes, rounds=8))


def waits(gauge: CreditGauge, svc: float, idle_s: float, starved_s: float | None, rounds: int = 6) -> list[int]:
    """Reports 50 ms apart of a worker held back by the controller: 100 events each, idle
    ``idle_s`` of every report's interval, ``starved_s`` of that holding no assigned event."""
    t = busy = 0.0
    starved: float | None = None if starved_s is None else 0.0
    gauge.observe(Sample(t, 0, busy, 0, starved))
    history = []
    for k in range(1, rounds + 1):
        t += 0.05
        busy += 0.05 - idle_s
        if starved is not None and starved_s is not None:
            starved += starved_s
        gauge.held_back()
        history.append(gauge.observe(Sample(t, 100 * k, busy, 100 * k * 2048, starved)))
    return history


def test_the_round_trip_is_the_wait_without_assigned_events_plus_the_unreported_half() -> None:
    svc = 0.03 / 100  # 30 ms busy per 100 events, 20 ms idle per 50 ms
    cap = int(FlowLimits().max_backlog_s / svc)  # 833: a quarter second of its work
    assert waits(CreditGauge(), svc, 0.02, 0.02) == [cap] * 6  # idle because out of assignments
    starved = CreditGauge()
    waits(starved, svc, 0.02, 0.005, rounds=1)
    assert starved.round_trip_s == pytest.approx(32 / 2 * (0.1 / 2000 + svc))  # C / 2 * (s / r + svc), s = 5 / 50 ms
    paced = CreditGauge()
    assert waits(paced, svc, 0.02, 0.0) == [cap] * 6  # waited for data, not credits: the same bound
    assert paced.round_trip_s is None  # nothing to measure: no made-up round trip in the status
    older = CreditGauge()  # a worker that does not count starvation: all its idle time counts
    waits(older, svc, 0.02, None, rounds=1)
    assert older.round_trip_s == pytest.approx(32 / 2 * (0.4 / 2000 + svc))


def paced_reports(gauge: CreditGauge, reports: list[tuple[float, int, float]]) -> list[int]:
    """Reports of a paced worker (waiting for data, never starved), each ``(seconds since the
    previous, events, busy seconds)``, its counters starting from zero (a gauge that saw reports
    before takes that as a restarted worker: a new measurement, the estimates kept); returns the
    credits after each."""
    t = busy = 0.0
    events = 0
    gauge.observe(Sample(t, events, busy, 0, 0.0))
    history = []
    for dt, n, b in reports:
        t, events, busy = t + dt, events + n, busy + b
        gauge.held_back()
        history.append(gauge.observe(Sample(t, events, busy, events * 2048, 0.0)))
    return history


def test_a_report_of_few_events_does_not_cut_the_credits() -> None:
    """As seen in a paced 24 kHz scan: reports of ~500 events at ~40 us each, then one of 5
    events whose pass took 1.6 ms (a pass's fixed work): the backlog bound read 312 us per
    event and cut 906 credits to 160 before the estimate was averaged."""
    gauge = CreditGauge(FlowLimits(ceiling=1 << 20), credits=906)
    steady = [(0.04, 500, 0.02)] * 5
    assert abs(paced_reports(gauge, steady)[-1] - 6250) <= 1  # 0.25 s / 40 us
    assert gauge.svc_s == pytest.approx(40e-6)
    after = paced_reports(gauge, [(0.0023, 5, 0.0016)])[-1]
    assert after >= 4000  # the bound moved from 6,250 to ~4,150 credits, not to 800


def test_a_worker_that_really_slows_down_is_bounded_within_three_reports() -> None:
    gauge = CreditGauge(FlowLimits(ceiling=1 << 20), credits=1200)
    paced_reports(gauge, [(0.04, 500, 0.02)] * 5)  # 40 us per event: the bound is 6,250
    history = paced_reports(gauge, [(0.04, 250, 0.04)] * 3)  # now 160 us per event: 1,562
    assert history[0] < 1900 and history[-1] <= 1.1 * 1562
    assert gauge.svc_s == pytest.approx(160e-6, rel=0.05)


def test_counters_going_back_restart_the_measurement() -> None:
    gauge = CreditGauge()
    gauge.observe(Sample(0.0, 1000, 1.0, 10**6))
    assert gauge.observe(Sample(0.1, 10, 0.01, 100)) == gauge.limits.initial  # a restarted worker
    assert gauge.svc_s is None


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        FlowLimits(floor=10, initial=5)
    with pytest.raises(ValueError):
        FlowLimits(max_backlog_s=0.0)
    with pytest.raises(ValueError):
        FlowLimits(svc_prior_events=-1)


def test_credit_book_fixed_and_adaptive() -> None:
    book = CreditBook()
    assert book.admit("fixed", 7) == 7 and book.report("fixed", 0.0, 1, 0.0, 1) is None
    assert book.admit("auto", None) == FlowLimits().initial
    assert book.report("auto", 0.0, None, None, None) is None  # a worker without counters: credits unchanged
    assert book.view()["fixed"] == {"credits": 7, "fixed": True}
    assert book.view()["auto"]["fixed"] is False


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.tuples(st.floats(0, 0.02), st.integers(0, 3), st.booleans()), min_size=1, max_size=60),
    batch=st.integers(1, 20),
)
def test_report_policy(ops: list[tuple[float, int, bool]], batch: int) -> None:
    policy = ReportPolicy(batch=batch, max_delay_s=0.01, min_gap_s=0.001)
    now, pending = 0.0, 0
    for dt, new, idle in ops:
        now += dt
        for _ in range(new):
            policy.completed(now)
            pending += 1
        due = policy.due(pending, idle, now)
        if pending == 0:
            assert not due and policy.timeout(pending, now) is None
            continue
        if pending >= batch:
            assert due
        if policy.oldest is not None and now - policy.oldest >= 0.01:
            assert due  # nothing waits longer than the delay bound
        if idle and now - policy.last_sent >= 0.001:
            assert due  # out of work: report at once
        timeout = policy.timeout(pending, now)
        assert timeout is not None and 0 <= timeout <= 0.01
        if due:
            policy.sent(now)
            pending = 0


def test_running_dry_with_assignments_on_their_way_waits_for_age_not_gap() -> None:
    from dranspose.core.flow import ReportPolicy

    p = ReportPolicy(batch=64, max_delay_s=0.01, min_gap_s=0.001)
    p.sent(0.0)
    p.completed(1.0)
    assert p.timeout(1, 1.0, starving=True) == 0.0  # nothing more assigned: report at once
    assert abs(p.timeout(1, 1.0, starving=False) - 0.01) < 1e-9  # frames still coming: age only
    assert not p.due(1, False, 1.005) and p.due(1, False, 1.011)


def test_coalescer_never_waits_for_slow_messages() -> None:
    from dranspose.core.flow import Coalescer

    c = Coalescer(linger_s=0.001, target=16)
    for _ in range(20):
        c.observe(1, 0.02)  # 50 Hz: one message per pass
        assert c.pause() == 0.0
    c.observe(1, 0.0006)  # even after a fast pair the smoothed gap stays long
    assert c.pause() == 0.0
    for _ in range(20):
        c.observe(1, 0.0005)  # 2 kHz: the pipeline keeps up; holding frames would only add latency
        assert c.pause() == 0.0


def test_coalescer_waits_a_bounded_time_when_messages_come_fast() -> None:
    from dranspose.core.flow import Coalescer

    c = Coalescer(linger_s=0.001, target=16)
    for _ in range(10):
        c.observe(1, 0.000125)  # 8 kHz, one message per pass
    assert 0.0 < c.pause() <= 0.001
    c.observe(40, 0.001)  # a pass that found plenty queued: no wait, read on
    assert c.pause() == 0.0
    c.observe(0, 0.1)  # a pass without data: the rate is unknown again
    assert c.pause() == 0.0 and c.interval_s is None


@settings(max_examples=200, deadline=None)
@given(passes=st.lists(st.tuples(st.integers(0, 100), st.floats(0, 0.1)), min_size=1, max_size=50))
def test_coalescer_pause_is_bounded(passes: list[tuple[int, float]]) -> None:
    from dranspose.core.flow import Coalescer

    c = Coalescer(linger_s=0.001, target=16)
    for received, cycle in passes:
        c.observe(received, cycle)
        pause = c.pause()
        assert 0.0 <= pause <= 0.001
        if received >= 16 or received == 0:
            assert pause == 0.0


def test_coalescer_defaults_leave_moderate_rates_alone() -> None:
    from dranspose.core.flow import Coalescer
    from dranspose.services.ingester import READ_BURST

    c = Coalescer()
    assert c.target <= READ_BURST  # a full pass never waits
    for _ in range(20):
        c.observe(1, 1 / 3000)  # 3 kHz: never held
        assert c.pause() == 0.0
    for _ in range(20):
        c.observe(1, 1 / 16000)  # 16 kHz: held, at most linger_s
    assert 0.0 < c.pause() <= c.linger_s
    c.observe(READ_BURST, 0.004)  # a full pass: read on at once
    assert c.pause() == 0.0


def test_report_age_limit_grows_with_the_workers_of_a_scan() -> None:
    """Reports sent for age alone stay near AGE_REPORTS_PER_S in all: 0.25 s up to 250
    workers, then workers / 1,000 s, at most 1 s; never shorter with more workers."""
    from dranspose.services.worker import AGE_REPORTS_PER_S, DONE_INTERVAL, MAX_DONE_INTERVAL, report_age_limit

    assert report_age_limit(1) == report_age_limit(250) == DONE_INTERVAL
    assert report_age_limit(500) == pytest.approx(0.5) and report_age_limit(1000) == MAX_DONE_INTERVAL
    assert report_age_limit(10**6) == MAX_DONE_INTERVAL
    limits = [report_age_limit(n) for n in range(1, 3000, 7)]
    assert limits == sorted(limits)
    assert all(n / limit <= AGE_REPORTS_PER_S * 1.0001 for n, limit in zip(range(1, 1000, 7), limits))
