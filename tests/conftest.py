"""Shared fixtures: a real redis-server per test on a free port (no fixed ports)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from dranspose.local.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # payload classes are imported as "tests.payloads.x:Class"
    sys.path.insert(0, str(ROOT))

from tests.paths import DATA  # noqa: E402


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh private redis-server for one test."""
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def captures() -> Path:
    """The real captures carried in ``tests/data``."""
    return DATA
