"""``dranspose replay`` as a process: --keep-alive serves until Ctrl-C; the progress line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from dranspose.replay.runner import _ProgressLine
from dranspose.replay.engine import ReplaySummary
from tests.cluster import Spawn

HERE = Path(__file__).resolve().parent

SCRIPT = """
import argparse, sys
sys.path[:0] = [{here!r}, {root!r}]
from dranspose.replay import configure_parser, run
p = argparse.ArgumentParser()
configure_parser(p)
sys.exit(run(p.parse_args(sys.argv[1:])))
"""


def start_replay(spawn: Spawn, *args: str) -> subprocess.Popen[str]:
    """``dranspose replay ARGS`` as a process; its stderr (the progress and status lines) piped."""
    code = SCRIPT.format(here=str(HERE), root=str(HERE.parents[1]))
    return spawn([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_keep_alive_serves_until_interrupted(spawn: Spawn, captures: Path) -> None:
    proc = start_replay(spawn, "-w", "replay_payloads:SumWorker", "-r", "replay_payloads:BlockingReducer",
                        "-f", str(captures / "dump_xrd.cbors"), "--port", "0", "--keep-alive")
    lines = []
    port = None
    assert proc.stderr is not None
    while port is None or not any("serving until Ctrl-C" in line for line in lines):
        line = proc.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
        if "serving HDF REST" in line:
            port = int(line.rsplit(":", 1)[1])
    text = "".join(lines)
    assert "11 events, 12 results, 0 errors" in text or "replay done" in text
    with httpx.Client(base_url=f"http://localhost:{port}", timeout=10) as c:
        assert c.get("/api/v1/parameter/label").status_code == 200
        c.post("/api/v1/parameter/offset", content=b"1")
        assert c.get("/api/v1/parameter/offset").content == b"1"
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(20) == 0, rest
    assert "11 events, 12 results, 0 errors" in text + rest


def test_progress_line() -> None:
    out = io.StringIO()
    bar = _ProgressLine(out)
    bar(ReplaySummary(events=5, results=4, payload_bytes=10_000_000, elapsed=2.0))
    bar.end()
    text = out.getvalue()
    assert text.startswith("\r") and "5 events" in text and "2.5 ev/s" in text and "5.0 MB/s" in text
    assert text.endswith("\n")


def test_ctrl_c_mid_replay_stops_early(spawn: Spawn, captures: Path) -> None:
    proc = start_replay(spawn, "-w", "replay_payloads:SumWorker", "-r", "replay_payloads:CollectReducer",
                        "-f", str(captures / "dump_xrd.cbors"), "--port", "0", "--latency", "1")
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving HDF REST" in line, line
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(20) == 130, rest
    assert "replay (interrupted)" in rest and "11 events" not in rest
