"""The data-path benchmark still runs, against a second tree too, and refuses to compare a tree
whose compiled hot path is not built or whose ``dranspose`` it did not actually import (figures
come from the bench, not from here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.e2e
def test_bench_data_path_smoke(tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(ROOT / "src", other / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_data_path.py"), "--against", str(other), "--pairs", "1", "--reps", "3"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    figures = dict(part.split()[-2:] for part in first.removeprefix("this tree:").removesuffix("µs per event").split(","))
    assert set(figures) == {"ingester", "worker", "reducer"} and all(0 < float(v) < 1000 for v in figures.values())
    assert "median of 1 per-pair ratios this / other: ingester" in out.stdout

    def refusal(tree: Path) -> str:
        bad = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "bench_data_path.py"), "--against", str(tree), "--pairs", "1", "--reps", "3"],
            capture_output=True, text=True, timeout=300, env=env,
        )
        assert bad.returncode != 0
        return bad.stderr

    not_built = tmp_path / "empty"  # nothing compiled there: its reference twins would be measured
    not_built.mkdir()
    assert "no compiled _fastpath extensions" in refusal(not_built)
    not_a_tree = tmp_path / "no-dranspose"  # built, but no dranspose there: the installed one would be measured
    (not_a_tree / "_fastpath").mkdir(parents=True)
    (not_a_tree / "_fastpath" / f"eventframes{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    assert "imported dranspose from" in refusal(not_a_tree)
