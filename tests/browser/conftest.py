"""A running demo scan for the browser tests: the in-process cluster (tests/cluster.py) with the
demo analysis, a synthetic STINS detector sending slowly in a thread, the reducer's HTTP on."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dranspose.demo.frames import demo_stins
from dranspose.local.redis_server import RedisServer
from dranspose.services.ingesters import resolve
from dranspose.sources.streamer import Streamer
from dranspose.transport.sockets import free_tcp_port
from tests.browser.cdp import Browser, find_browser
from tests.cluster import Cluster

FRAMES = 3000
RATE = 100.0  # frames per second: the scan runs for ~30 s, longer than the tests need


@dataclass
class DemoScan:
    cluster: Cluster
    controller_url: str
    reducer_url: str
    streamer: Streamer
    sender: threading.Thread


@pytest.fixture(scope="module")
def demo_scan() -> Iterator[DemoScan]:
    """The demo pipeline mid-scan (module scope: started once for the browser tests)."""
    with RedisServer() as redis_server:
        url = f"tcp://127.0.0.1:{free_tcp_port()}"
        pattern, cutter = resolve("ZmqPullSingleIngester")
        cluster = Cluster(redis_server.url, "dranspose.demo:DemoWorker", "dranspose.demo:DemoReducer",
                          {"demo": (url, cutter, pattern)}, nworkers=2, reducer_http=True).start()
        try:
            cluster.set_mapping({"demo": [[{"tags": ["generic"], "constraint": i}] for i in range(FRAMES)]})
            streamer = Streamer(url, "PUSH")

            def send() -> None:
                streamer.wait_for_peer(30)
                streamer.send(demo_stins(FRAMES, (96, 128), "uint16", period=1000), RATE)

            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            assert cluster.reducer.http is not None
            yield DemoScan(cluster, cluster.controller.url, cluster.reducer.http.url, streamer, sender)  # type: ignore[union-attr]
        finally:
            cluster.post("/api/v1/stop")
            cluster.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: DRANSPOSE_SCREENSHOT_DIR (e.g. docs/, to refresh the README's), else a temporary folder."""
    return Path(os.environ.get("DRANSPOSE_SCREENSHOT_DIR") or tmp_path)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if find_browser() is None:
        pytest.skip("no chromium here and it could not be installed (run `make test-env` as root: scripts/ensure-chromium)")
    with Browser() as b:
        yield b
