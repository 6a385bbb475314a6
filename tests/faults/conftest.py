"""The deployment the fault tests run on: the Helm chart's components as CLI processes, on
loopback and each on its own network-namespace host (``deployment`` is parametrized over both;
the namespace one is skipped with the reason where namespaces cannot be made, i.e. not root)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.faults import harness
from tests.faults.harness import FaultDeployment

NWORKERS = 3


@pytest.fixture(params=["loopback", "netns"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaultDeployment]:
    if request.param == "loopback":
        dep = harness.loopback(tmp_path, NWORKERS)
        try:
            yield dep.start()
        finally:
            dep.stop()
        return
    from tests.deploy import netns

    why = netns.unavailable()
    if why is not None:
        pytest.skip(why)
    netns.sweep_stale()
    dep, hosts = harness.netns(tmp_path, NWORKERS)
    try:
        yield dep.start()
    finally:
        try:
            dep.stop()
        finally:
            hosts.cleanup()
