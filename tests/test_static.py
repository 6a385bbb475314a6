"""The static gates of ``make lint`` (ruff and strict mypy, configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # ruff and mypy run as processes

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    out = _run("ruff", "check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_and_boundaries_are_strictly_typed() -> None:
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success" in out.stdout


def test_gate_covers_the_issue_scope_and_is_pinned() -> None:
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["strict"] is True
    for path in ("core", "transport", "protocols", "store", "backend.py", "hooks.py"):
        assert f"src/dranspose/{path}" in mypy["files"]
    pins = dict(req.split("==") for req in PYPROJECT["project"]["optional-dependencies"]["lint"])
    assert set(pins) == {"ruff", "mypy"}
    from importlib.metadata import version

    for name, pinned in pins.items():
        assert version(name) == pinned, f"{name} {version(name)} installed, {pinned} pinned: run make install"


def test_version_lives_in_one_place() -> None:
    import dranspose

    assert "version" in PYPROJECT["project"]["dynamic"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dranspose.__version__"}
    assert dranspose.__version__.count(".") == 2
