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


def test_a_killed_benchmark_takes_its_pipeline_with_it() -> None:
    script = textwrap.dedent("""
        import os, sys, time
        sys.path.insert(0, os.getcwd())
        from bench.bench_pipeline import ours
        pipe = ours(1)
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
