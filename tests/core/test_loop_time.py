"""A thread's time on a core and waiting for one, as the kernel counts it (services/loop_time)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from dranspose.services.loop_time import CoreTime, CoreWaits, core_time, describe

SPIN = "import os, sys\nos.sched_setaffinity(0, {%d})\nprint('spinning', flush=True)\nwhile True:\n    pass\n"


@pytest.mark.e2e
def test_a_thread_behind_a_busy_process_on_its_core_is_counted_waiting() -> None:
    """A thread at nice 10 spinning on the one core a nice-0 process keeps busy gets about a
    tenth of it: the kernel counts most of its runnable time as waiting for the core."""
    cpu = min(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN % cpu], stdout=subprocess.PIPE, text=True)
    spent: list[CoreTime | None] = []

    def measured() -> None:
        tid = threading.get_native_id()
        os.sched_setaffinity(tid, {cpu})
        os.setpriority(os.PRIO_PROCESS, tid, 10)  # this thread only; it ends with the test
        spent.append(core_time(tid))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.8:  # runnable all the time
            pass
        spent.append(core_time(tid))

    try:
        assert spinner.stdout is not None and spinner.stdout.readline().strip() == "spinning"
        thread = threading.Thread(target=measured)
        thread.start()
        thread.join()
    finally:
        spinner.kill()
        spinner.wait()
    start, end = spent
    assert start is not None and end is not None
    on = end.on_core_s - start.on_core_s
    waiting = end.waiting_for_core_s - start.waiting_for_core_s
    assert on + waiting >= 0.6  # runnable the whole time (the counts are the kernel's, in seconds)
    assert waiting > 2 * on  # behind the busy process most of it
    share = CoreTime(on, waiting).waiting_share()
    assert share is not None and share > 0.66


@pytest.mark.e2e
def test_core_waits_are_those_of_the_thread_that_first_read_them() -> None:
    """What a worker's data loop leaves out of its busy time: a thread spinning behind a busy
    process on its core waits most of the time; one that sleeps (off the core: I/O, a device)
    does not wait for a core, and its reading does not take the other thread's waits."""
    cpu = min(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN % cpu], stdout=subprocess.PIPE, text=True)
    waited: dict[str, float] = {}

    def spinning() -> None:
        tid = threading.get_native_id()
        os.sched_setaffinity(tid, {cpu})
        os.setpriority(os.PRIO_PROCESS, tid, 10)
        waits = CoreWaits()
        before = waits.read()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.8:
            pass
        waited["spinning"] = waits.read() - before
        waits.close()

    def sleeping(waits: CoreWaits) -> None:
        before = waits.read()  # the first reading: this thread's counts from now on
        time.sleep(0.8)
        waited["sleeping"] = waits.read() - before
        waits.close()

    try:
        assert spinner.stdout is not None and spinner.stdout.readline().strip() == "spinning"
        threads = [threading.Thread(target=spinning), threading.Thread(target=sleeping, args=(CoreWaits(),))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        spinner.kill()
        spinner.wait()
    assert waited["spinning"] >= 0.5  # of 0.8 s runnable behind the spinner
    assert waited["sleeping"] < 0.05
    mine = CoreWaits()
    assert 0.0 <= mine.read() < 60  # this thread's, in seconds (not nanoseconds)
    mine.close()


def test_the_counts_of_this_thread_grow_and_a_gone_thread_has_none() -> None:
    tid = threading.get_native_id()
    first = core_time(tid)
    t0 = time.thread_time()  # this thread's CPU only (other threads of the test process may run too)
    while time.thread_time() - t0 < 0.05:
        pass
    second = core_time(tid)
    assert first is not None and second is not None
    assert second.on_core_s - first.on_core_s >= 0.04
    assert second.waiting_for_core_s >= first.waiting_for_core_s
    assert core_time(2**31 - 1) is None  # no such thread here


def test_described_for_the_status_page() -> None:
    state = CoreTime(1.2, 0.8).as_state()
    assert state == {"on_core_s": 1.2, "waiting_for_core_s": 0.8}
    assert describe(state) == "data loop 1.2 s on a core, 0.8 s waiting for one (40%)"
    assert describe({"on_core_s": 0.0, "waiting_for_core_s": 0.0}) == "data loop 0.0 s on a core, 0.0 s waiting for one"
    assert describe(None) == "" and describe({"on_core_s": "x"}) == ""  # an older component, no schedstat
    assert CoreTime.from_state(state) == CoreTime(1.2, 0.8)
    for hostile in (None, [], {"on_core_s": 1.0}, {"on_core_s": True, "waiting_for_core_s": 0.0}, {"on_core_s": "1", "waiting_for_core_s": 0}):
        assert CoreTime.from_state(hostile) is None  # states come through Redis
