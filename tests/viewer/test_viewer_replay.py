"""``dranspose replay --port`` serves the live viewer while it replays (as a process, the way a
user starts it): the page, plotly.js from the installed package, and data that grows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from tests.paths import DATA, ROOT

import pytest

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)


def test_replay_serves_the_viewer_while_it_runs() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "replay"), str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "dranspose.cli", "replay", "-w", "replay_payloads:SumWorker", "-r", "replay_payloads:CollectReducer",
            "-f", str(DATA / "dump_xrd.cbors"), "--port", "0", "--latency", "0.25", "--keep-alive", "--no-progress"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        assert proc.stderr is not None
        port = None
        lines: list[str] = []
        while port is None:
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
            m = re.search(r"serving HDF REST.*:(\d+)\s*$", line)
            if m:
                port = int(m.group(1))
        with httpx.Client(base_url=f"http://localhost:{port}", timeout=10) as c:
            assert c.get("/viewer").status_code == 200
            assert c.get("/viewer/static/plotly.min.js").status_code == 200
            counts = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(set(counts)) < 3:
                body = c.get("/viewer/api/poll", params={"path": "/count"}).json()
                if "value" in body["datasets"]["/count"]:
                    counts.append(body["datasets"]["/count"]["value"])
                time.sleep(0.2)
            assert len(set(counts)) >= 3 and counts == sorted(counts), counts
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
