"""The scheduler trace of the pipeline benchmark: ``perf sched script`` lines -> thread and
core intervals, how the cores were used, and the timeline rows."""

from __future__ import annotations

import os
import threading

from bench.sched_trace import ASLEEP, RUNNABLE, RUNNING, core_row, core_use, parse_sched_script, thread_roles, thread_row

# two cores; A (100) runs on core 0, B (200) is woken there and preempts it, core 1 stays idle
SCRIPT = """\
         python   300 [001]     1.000000:       sched:sched_switch: prev_comm=python prev_pid=300 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
        swapper     0 [000]     1.000000:       sched:sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=python next_pid=100 next_prio=120
         python   100 [000]     1.000500: sched:sched_stat_runtime: comm=python pid=100 runtime=500000 [ns]
         python   100 [000]     1.001000:       sched:sched_waking: comm=ZMQbg/IO/0 pid=200 prio=120 target_cpu=000
         python   100 [000]     1.003000:       sched:sched_switch: prev_comm=python prev_pid=100 prev_prio=120 prev_state=R ==> next_comm=ZMQbg/IO/0 next_pid=200 next_prio=120
     ZMQbg/IO/0   200 [000]     1.004000:       sched:sched_switch: prev_comm=ZMQbg/IO/0 prev_pid=200 prev_prio=120 prev_state=S ==> next_comm=python next_pid=100 next_prio=120
         python   100 [000]     1.005000:       sched:sched_switch: prev_comm=python prev_pid=100 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
"""


def test_switches_and_wakeups_become_each_threads_states_and_each_cores_occupant() -> None:
    trace = parse_sched_script(SCRIPT.splitlines())
    assert trace.states[100] == [(1.000, 1.003, RUNNING), (1.003, 1.004, RUNNABLE), (1.004, 1.005, RUNNING)]
    assert trace.states[200] == [(1.001, 1.003, RUNNABLE), (1.003, 1.004, RUNNING), (1.004, 1.005, ASLEEP)]
    assert trace.cores[0] == [(1.000, 1.003, 100), (1.003, 1.004, 200), (1.004, 1.005, 100)]
    assert trace.cores[1] == [(1.000, 1.005, 0)]  # idle throughout
    assert trace.names[200] == "ZMQbg/IO/0"


def test_a_core_idle_while_a_thread_waits_on_the_other_is_counted_past_the_wakeup() -> None:
    trace = parse_sched_script(SCRIPT.splitlines())
    use = core_use(trace, 1.000, 1.005)
    assert abs(use["1 busy"] - 1.0) < 1e-9
    assert abs(use["idle while waiting"] - 0.6) < 1e-6  # B runnable 1.001-1.003, then A 1.003-1.004
    assert "idle while waiting" not in core_use(trace, 1.000, 1.005, min_wait_s=0.005)  # shorter than that: a wake-up


def test_timeline_rows_show_the_longest_state_per_step() -> None:
    trace = parse_sched_script(SCRIPT.splitlines())
    assert thread_row(trace, 100, 1.000, 1.005, 0.001) == "XXXrX"
    assert thread_row(trace, 200, 1.000, 1.005, 0.001) == " rrX."  # nothing known before its wake-up
    assert core_row(trace, 0, 1.000, 1.005, 0.001, {100: "I", 200: "i"}) == "IIIiI"
    assert core_row(trace, 1, 1.000, 1.005, 0.001, {}) == "....."


def test_threads_are_named_by_their_process_and_kind() -> None:
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, name="helper")
    helper.start()
    try:
        labels, codes = thread_roles({"ingester": os.getpid(), "gone": 2**22 + 1})
    finally:
        stop.set()
        helper.join()
    assert labels[os.getpid()] == "ingester" and codes[os.getpid()] == "I"
    others = [tid for tid in labels if tid != os.getpid()]
    assert others and all(labels[t].startswith("ingester ") and codes[t] == "i" for t in others)
