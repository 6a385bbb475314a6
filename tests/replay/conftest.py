"""Fixtures for the replay/record/source tests: capture paths and importable payloads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE)):  # examples.tutorial and replay_payloads importable by class path
    if p not in sys.path:
        sys.path.insert(0, p)

CAPTURES = Path(os.environ.get("DRANSPOSE_CAPTURES", ROOT.parent / "shared" / "captures"))


@pytest.fixture
def captures() -> Path:
    if not (CAPTURES / "dump_xrd.cbors").exists():
        pytest.fail(f"captures not found in {CAPTURES} (set DRANSPOSE_CAPTURES)")
    return CAPTURES
