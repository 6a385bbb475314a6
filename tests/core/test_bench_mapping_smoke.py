"""The map-posting benchmark still runs (a small map, one round; figures come from the bench)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.e2e
def test_bench_mapping_smoke(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DRANSPOSE020_VENV"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    bench = [sys.executable, str(ROOT / "bench" / "bench_mapping.py")]
    out = subprocess.run([*bench, "--events", "3000", "--rounds", "1"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.split()[:1] == ["3,000"]]
    assert len(rows) == 1 and 0 < float(rows[0][1].rstrip("s")) < 60

    bad = subprocess.run([*bench, "--against", str(tmp_path), "--events", "10"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode != 0 and "no dranspose package" in bad.stderr
