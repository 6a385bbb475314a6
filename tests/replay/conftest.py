"""Fixtures for the replay/record/source tests: capture paths and importable payloads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE)):  # examples.tutorial and replay_payloads importable by class path
    if p not in sys.path:
        sys.path.insert(0, p)

from tests.paths import DATA as CAPTURES  # noqa: E402


@pytest.fixture
def captures() -> Path:
    """The real captures carried in ``tests/data``."""
    return CAPTURES
