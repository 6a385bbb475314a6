"""A signalled component process stops cleanly, or within the grace period all the same: real
processes and signals. A stop stuck in a call that never returns ends with every thread's stack
on stderr and status 1; a second signal ends it at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.e2e  # starts processes

_SCRIPT = """
import sys, time
from dranspose.services.runner import stop_on_signals
stopped = []
stop_on_signals(lambda: stopped.append(True), grace_s={grace})

def stuck_in_close():
    while True:  # a stop that never ends (a dead peer, a hook): the signal's stop is ignored
        time.sleep(0.05)

print("ready", flush=True)
if {stuck}:
    stuck_in_close()
while not stopped:
    time.sleep(0.05)
print("stopped cleanly", flush=True)
"""


def _start(grace: float, stuck: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT.format(grace=grace, stuck=stuck))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_stop_that_ends_exits_cleanly_without_a_dump() -> None:
    proc = _start(grace=30.0, stuck=False)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out and "Timeout" not in err


def test_a_stuck_stop_ends_after_the_grace_period_with_every_threads_stack() -> None:
    proc = _start(grace=1.0, stuck=True)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)  # 1 s of grace; without the watchdog it never ends
    assert proc.returncode == 1
    assert "Timeout (0:00:01)!" in err and "stuck_in_close" in err  # where it was stuck


def test_a_second_signal_ends_a_stuck_stop_at_once() -> None:
    proc = _start(grace=300.0, stuck=True)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):  # the first only asks it to stop
        proc.wait(0.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)  # far inside the 300 s of grace
    assert proc.returncode == 128 + signal.SIGINT
    assert "second signal" in err and "Timeout" not in err
