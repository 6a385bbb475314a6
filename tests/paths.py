"""Where the tests' own files live: everything a test reads is inside the repository."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
"""Real captures and dumps (see ``tests/data/README.md``)."""
