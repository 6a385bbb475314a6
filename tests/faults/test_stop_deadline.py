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


# An HTTP service (the controller, the HTTP ingester) runs under uvicorn through ``run_app``:
# the same deadline once a signal came, whether the stop sticks in the app's shutdown or in a
# thread that never ends (the interpreter waits for it at exit). A controller once kept running
# for over 20 s after its benchmark was killed, its scheduler retrying a Redis that was gone.
_APP_SCRIPT = """
import threading, time
from contextlib import asynccontextmanager
from fastapi import FastAPI
from dranspose.services.http import run_app

def stuck_in_shutdown():
    while True:
        time.sleep(0.05)

def thread_that_never_ends():
    while True:
        time.sleep(0.05)

@asynccontextmanager
async def lifespan(app):
    if {stuck} == "thread":
        threading.Thread(target=thread_that_never_ends, daemon=False).start()
    print("ready", flush=True)
    yield
    if {stuck} == "shutdown":
        stuck_in_shutdown()

run_app(FastAPI(lifespan=lifespan), "127.0.0.1", {port}, "warning", grace_s={grace})
"""


def _start_app(grace: float, stuck: str) -> subprocess.Popen[str]:
    from dranspose.transport.sockets import free_tcp_port

    script = textwrap.dedent(_APP_SCRIPT.format(grace=grace, stuck=repr(stuck), port=free_tcp_port()))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_an_http_service_that_stops_cleanly_exits_with_status_0() -> None:
    proc = _start_app(grace=30.0, stuck="nothing")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Timeout" not in err


@pytest.mark.parametrize("stuck, where", [("shutdown", "stuck_in_shutdown"), ("thread", "thread_that_never_ends")])
def test_an_http_service_whose_stop_sticks_ends_after_the_grace_period(stuck: str, where: str) -> None:
    proc = _start_app(grace=1.0, stuck=stuck)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)  # 1 s of grace; without the deadline it never ends
    assert proc.returncode == 1, err
    assert "Timeout (0:00:01)!" in err and where in err  # where it was stuck
