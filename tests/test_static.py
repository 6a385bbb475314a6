"""Strict typing of the pure core and the boundaries (STYLE lesson 11), checked by mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRICT = [
    "src/dranspose/core", "src/dranspose/transport", "src/dranspose/store", "src/dranspose/hooks.py",
    "src/dranspose/errors.py", "src/dranspose/safe_pickle.py", "src/dranspose/protocols",
]


def test_core_and_boundaries_are_strictly_typed() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", *STRICT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
