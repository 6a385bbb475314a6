"""The control-plane benchmark still runs (a small smoke run, 0.15 s simulated; figures come from the bench)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.e2e
def test_bench_control_smoke() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_control.py"), "--events", "150000", "--workers", "3,30"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.strip() and line.split()[0] in ("3", "30")]
    assert len(rows) == 2
    for row in rows:
        # events/s, us/event over the scan and over its middle 0.12 s (simulated), bytes per event
        assert float(row[1].replace(",", "")) > 0 and 0 < float(row[3]) < 1000 and 1 < float(row[4]) < 100
