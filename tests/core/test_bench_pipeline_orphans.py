"""A pipeline benchmark killed outright (a timeout, Ctrl-\\) leaves none of its pipeline's
processes running to take CPU beside later measurements: real processes, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.core.test_supervisor_death import ROOT, alive, children, cmdline, wait_until

pytestmark = pytest.mark.e2e  # starts processes


@pytest.mark.parametrize("own_sessions", [False, True])
def test_a_killed_benchmark_takes_its_pipeline_with_it(own_sessions: bool) -> None:
    """Also: the components run in the benchmark's session, each in a process group of its own
    (as ``dranspose combined`` starts them), or with ``own_sessions`` each in a session of its own."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, os.getcwd())
        from bench.bench_pipeline import ours
        pipe = ours(1, own_sessions={own_sessions})
        print("ready", flush=True)
        time.sleep(120)
    """)
    bench = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    spawned: list[int] = []
    try:
        assert bench.stdout is not None and bench.stdout.readline().strip() == "ready"
        spawned = children(bench.pid)
        kinds = " ".join(cmdline(p) for p in spawned)
        for part in ("controller", "reducer", "ingester", "worker", "redis-server"):
            assert part in kinds, kinds  # every component and the pipeline's own Redis
        components = [p for p in spawned if "redis-server" not in cmdline(p)]
        assert len(components) == 4 and [os.getpgid(p) for p in components] == components
        sessions = [os.getsid(p) for p in components]
        assert sessions == (components if own_sessions else [os.getsid(bench.pid)] * 4)
        os.kill(bench.pid, signal.SIGKILL)
        bench.wait(10)
        assert wait_until(lambda: not any(alive(p) for p in spawned), 20), [cmdline(p) for p in spawned if alive(p)]
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)
        for p in spawned:  # whatever outlived it (reparented by then: no longer its children)
            if alive(p):
                os.kill(p, signal.SIGKILL)
