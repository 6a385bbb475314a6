"""Components started by ``dranspose combined`` end with it, even when it is killed outright
(services/parent_watch.py): real processes, SIGKILL, the kernel's parent-death signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from dranspose.services import parent_watch

pytestmark = pytest.mark.e2e  # starts processes

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_only_a_named_supervisor_is_followed_and_the_name_is_not_passed_on() -> None:
    assert parent_watch.end_with_supervisor({}) is False
    env = {parent_watch.ENV: "not a pid"}
    assert parent_watch.end_with_supervisor(env) is False
    assert parent_watch.ENV not in env


CHILD = """
import sys, time
sys.path.insert(0, {src!r})
from dranspose.services import parent_watch
print("armed" if parent_watch.end_with_supervisor() else "not armed", flush=True)
time.sleep(120)
"""

PARENT = """
import os, subprocess, sys, time
from dranspose.services import parent_watch
env = dict(os.environ, **{{parent_watch.ENV: str(os.getpid())}})
child = subprocess.Popen([sys.executable, "-c", {child!r}], env=env, stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def outlives_its_killed_supervisor(child_script: str, timeout: float) -> bool:
    """Run ``child_script`` (it prints whether it follows its supervisor) under PARENT, SIGKILL
    the supervisor, and tell whether the child was still running ``timeout`` s later (whatever
    outlived it is killed then)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=child_script)], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert parent.stdout is not None
        pid, state = parent.stdout.readline().split()
        child = int(pid)
        assert state == "armed" and alive(child)
        parent.kill()
        parent.wait(10)
        return not wait_until(lambda: not alive(child), timeout)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        try:  # a child that outlived it is still in its process group
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# the same child with the kernel's request taken back after it was made: only the fallback
# thread of parent_watch is left to notice that its supervisor is gone
CHILD_WITHOUT_KERNEL_SIGNAL = """
import ctypes, sys, time
sys.path.insert(0, {src!r})
from dranspose.services import parent_watch
armed = parent_watch.end_with_supervisor()
ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0: no signal from the kernel
print("armed" if armed else "not armed", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("child_script", [CHILD, CHILD_WITHOUT_KERNEL_SIGNAL], ids=["kernel", "fallback"])
def test_a_child_ends_when_its_supervisor_is_killed(child_script: str) -> None:
    assert not outlives_its_killed_supervisor(child_script.format(src=str(ROOT / "src")), 10), \
        "the child outlived its supervisor"


# a component-like child whose clean stop takes a while: the fallback must not send a second
# signal once the kernel's came (a second one ends a component at once: services/runner.py)
CHILD_SLOW_CLEAN_STOP = """
import sys, time
sys.path.insert(0, {src!r})
from dranspose.services import parent_watch
from dranspose.services.runner import stop_on_signals
stopped = []
stop_on_signals(lambda: stopped.append(True), grace_s=30)
print("armed" if parent_watch.end_with_supervisor() else "not armed", flush=True)
while not stopped:
    time.sleep(0.05)
time.sleep(3 * parent_watch.POLL_S)  # the clean stop, longer than the fallback's wait
with open({out!r}, "w") as fh:
    fh.write("stopped cleanly")
"""


def test_a_child_that_got_the_kernels_signal_stops_cleanly_without_a_second(tmp_path: Path) -> None:
    out = tmp_path / "outcome"
    child_script = CHILD_SLOW_CLEAN_STOP.format(src=str(ROOT / "src"), out=str(out))
    assert not outlives_its_killed_supervisor(child_script, 15), "the child outlived its supervisor"
    assert out.exists() and out.read_text() == "stopped cleanly"


def start_combined() -> tuple[subprocess.Popen[str], list[int], list[int]]:
    """``dranspose combined --demo`` in a session of its own, running: (process, component
    pids, other children: its redis-server)."""
    cmd = [sys.executable, "-m", "dranspose.cli", "combined", "--demo", "--demo-frames", "100000", "--demo-rate", "50",
           "--demo-shape", "16x16", "--controller-port", "0", "--reducer-port", "0", "--nworkers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(re.search(r"live viewer http://", line) for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        kids = children(proc.pid)
    except BaseException:
        end_combined(proc, [])
        raise
    components = [p for p in kids if "dranspose.cli" in cmdline(p)]
    return proc, components, [p for p in kids if p not in components]


def end_combined(proc: subprocess.Popen[str], pids: list[int]) -> None:
    """Kill ``proc`` and whatever of ``pids`` outlived it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for p in pids:
        if alive(p):
            os.kill(p, signal.SIGKILL)


def test_killing_dranspose_combined_ends_its_components() -> None:
    proc, components, others = start_combined()
    try:
        assert ["redis-server" in cmdline(p) for p in others] == [True]  # the private redis-server
        assert len(components) == 4, [cmdline(p) for p in components]  # controller, reducer, ingester, worker
        proc.kill()  # no chance to stop its children itself
        proc.wait(10)
        assert wait_until(lambda: not any(alive(p) for p in components + others), 20), \
            [cmdline(p) for p in components + others if alive(p)]
        assert others and all("redis-server" in cmdline(p) or not alive(p) for p in others)
    finally:
        end_combined(proc, components + others)


def autogroup(pid: int) -> str | None:
    """The scheduling group the kernel put ``pid`` in by session (None: no autogroups here)."""
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            return fh.read().split()[0]
    except OSError:
        return None


def test_dranspose_combined_keeps_its_components_in_its_session_each_in_a_process_group_of_its_own() -> None:
    """One session: one scheduling group where the kernel groups by session (a session per
    component raised the 80%-load tail on two cores); a process group of its own: a Ctrl-C in
    the terminal reaches only the launcher, which stops the components in order."""
    proc, components, others = start_combined()
    try:
        kids = components + others
        assert len(kids) == 5, [cmdline(p) for p in kids]
        assert [os.getsid(p) for p in kids] == [proc.pid] * 5  # the launcher's session (it leads it)
        assert [os.getpgid(p) for p in kids] == kids  # each leads a process group of its own
        assert len({autogroup(p) for p in [proc.pid, *kids]}) == 1
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
        assert proc.wait(30) == 0
        assert wait_until(lambda: not any(alive(p) for p in kids), 10), [cmdline(p) for p in kids if alive(p)]
    finally:
        end_combined(proc, components + others)
