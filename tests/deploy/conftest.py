"""Fixtures of the deployment tests: the Helm chart's components as separate processes, on
loopback (``chart_loopback``) or each on its own network-namespace host (``chart_netns``).
Both yield a :class:`tests.deploy.deployment.Deployment` (start/kill/restart/pause by name)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import pytest

from dranspose.transport.sockets import free_tcp_port
from tests.deploy import chart
from tests.deploy.deployment import Deployment, LoopbackDeployment, NetnsDeployment
from tests.deploy.scenario import STREAM

FRAMES = 120


@pytest.fixture
def rng() -> random.Random:
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"deployment start order seed: {seed}")
    return random.Random(seed)


@pytest.fixture
def chart_loopback(tmp_path: Path) -> Iterator[Deployment]:
    """Redis, controller, reducer, an ingester, two workers, the debug worker and a detector
    on 127.0.0.1 (not started)."""
    http = ["controller", "reducer", "debugworker"]
    dep = LoopbackDeployment(tmp_path, {name: free_tcp_port() for name in http}, redis_port=free_tcp_port())
    dep.common_env = chart.common_env(f"redis://127.0.0.1:{dep.redis_port}/0")
    det = f"tcp://127.0.0.1:{free_tcp_port()}"
    for spec in (
        chart.redis(dep.redis_port, bind="127.0.0.1"),
        chart.controller(),
        chart.reducer(f"tcp://127.0.0.1:{free_tcp_port()}"),
        chart.ingester(STREAM, det, f"tcp://127.0.0.1:{free_tcp_port()}"),
        chart.worker(index=0),
        chart.worker(index=1),
        chart.debugworker(),
        chart.detector(FRAMES, bind=det),
    ):
        dep.add(spec)
    try:
        yield dep
    finally:
        dep.stop_all()


@pytest.fixture
def chart_netns(tmp_path: Path) -> Iterator[Deployment]:
    """The same components, each on its own host made of a network namespace, started with the
    chart's exact commands and environment (service names resolve through the hosts files)."""
    from tests.deploy import netns

    why = netns.unavailable()
    if why is not None:
        pytest.skip(why)
    netns.sweep_stale()
    placement = {
        "redis": "redis", "controller": "controller", "reducer": "reducer", f"ingester-{STREAM}": f"ingester-{STREAM}",
        "worker-0": "worker-0", "worker-1": "worker-1", "debugworker": "debugworker", "detector": "detector",
    }
    hosts = netns.Hosts([*placement.values(), "client"])
    hosts.create()
    dep = NetnsDeployment(tmp_path, hosts, placement)
    name = hosts.hostname
    dep.common_env = chart.common_env(f"redis://{name('redis')}:6379/0")
    for spec in (
        chart.redis(),
        chart.controller(),
        chart.reducer(f"tcp://{name('reducer')}:10010"),
        chart.ingester(STREAM, f"tcp://{name('detector')}:9999", f"tcp://{name(f'ingester-{STREAM}')}:10010"),
        chart.worker(index=0),
        chart.worker(index=1),
        chart.debugworker(),
        chart.detector(FRAMES, bind="tcp://*:9999"),
    ):
        dep.add(spec)
    try:
        yield dep
    finally:
        try:
            dep.stop_all()
        finally:
            hosts.cleanup()
