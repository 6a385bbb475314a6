"""Fixtures: a live HDF REST server over a publish dict, and the h5pyd 0.18.0 venv."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from dranspose.hdfrest import create_app
from tests.hdfrest.matrix import make_publish
from tests.hdfrest.server_util import FiveXXRecorder, Source, serve

H5PYD_OLD = "0.18.0"


class Live:
    def __init__(self, url: str, source: Source, recorder: FiveXXRecorder) -> None:
        self.url = url
        self.source = source
        self.recorder = recorder


@pytest.fixture
def live() -> Iterator[Live]:
    """A server over the type matrix; fails the test on any 5xx response."""
    source = Source(make_publish())
    recorder = FiveXXRecorder(create_app(source))
    with serve(recorder) as url:
        yield Live(url, source, recorder)
    assert recorder.failures == [], f"5xx responses: {recorder.failures}"


@pytest.fixture(scope="module")
def live_module() -> Iterator[Live]:
    """Like ``live`` but shared by a module (read-only tests)."""
    source = Source(make_publish())
    recorder = FiveXXRecorder(create_app(source))
    with serve(recorder) as url:
        yield Live(url, source, recorder)
    assert recorder.failures == [], f"5xx responses: {recorder.failures}"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dranspose-test" / f"h5pyd{H5PYD_OLD.replace('.', '')}"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import h5pyd, sys; sys.stdout.write(h5pyd.version.version)"],
        capture_output=True, text=True, timeout=120,
    )
    return probe.returncode == 0 and probe.stdout.strip() == H5PYD_OLD


@pytest.fixture(scope="session")
def h5pyd018_python() -> Path:
    """Python of a venv with h5pyd==0.18.0 (the version existing analyses pin), created
    under the user cache dir on first use and reused. Creation failure FAILS the test."""
    venv = _cache_dir()
    python = _venv_python(venv)
    if _works(python):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes: one creates, all reuse
        if not _works(python):
            _create_venv(venv, python)
    return python


def _create_venv(venv: Path, python: Path) -> None:
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", f"h5pyd=={H5PYD_OLD}", "numpy<2"],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"cannot create the h5pyd {H5PYD_OLD} venv: {' '.join(cmd)}\n"
                        f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if not _works(python):
        pytest.fail(f"h5pyd {H5PYD_OLD} venv at {venv} does not import h5pyd {H5PYD_OLD}")
