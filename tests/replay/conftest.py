"""The replay/record/source tests import their payloads by class path (``replay_payloads:X``,
``examples.tutorial.worker:Y``); the ``captures`` fixture is the suite's (tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE)):  # examples.tutorial and replay_payloads importable by class path
    if p not in sys.path:
        sys.path.insert(0, p)
