"""Fixtures: a live HDF REST server over a publish dict, and the h5pyd 0.18.0 venv."""

from __future__ import annotations

import os
import subprocess
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


def _live_server() -> Iterator[Live]:
    source = Source(make_publish())
    recorder = FiveXXRecorder(create_app(source))
    with serve(recorder) as url:
        yield Live(url, source, recorder)
    assert recorder.failures == [], f"5xx responses: {recorder.failures}"


@pytest.fixture
def live() -> Iterator[Live]:
    """A server over the type matrix; fails the test on any 5xx response."""
    yield from _live_server()


@pytest.fixture(scope="module")
def live_module() -> Iterator[Live]:
    """Like ``live`` but shared by a module (read-only tests)."""
    yield from _live_server()


def _venv_dir() -> Path:
    """Where ``scripts/ensure-h5pyd018`` (run by ``make install``) puts the venv."""
    explicit = os.environ.get("DRANSPOSE_H5PYD018_VENV")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dranspose-test" / f"h5pyd{H5PYD_OLD.replace('.', '')}"


@pytest.fixture(scope="session")
def h5pyd018_python() -> Path:
    """Python of the venv with h5pyd==0.18.0 (the version existing analyses pin). Tests never
    install packages: the venv is made by ``scripts/ensure-h5pyd018`` (``make install``), and
    a missing one FAILS the test with that instruction."""
    python = _venv_dir() / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no h5pyd {H5PYD_OLD} venv at {python.parent.parent}: run scripts/ensure-h5pyd018 (make install)")
    probe = subprocess.run(
        [str(python), "-c", "import h5pyd, sys; sys.stdout.write(h5pyd.version.version)"],
        capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0 or probe.stdout.strip() != H5PYD_OLD:
        pytest.fail(f"{python} does not import h5pyd {H5PYD_OLD}: run scripts/ensure-h5pyd018")
    return python
