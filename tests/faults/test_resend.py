"""Reports a Redis restart may have lost are sent again (transport/resend), and the scan core
takes a repeated completion once."""

from __future__ import annotations

from typing import Iterator

import pytest
import redis

from dranspose.core.scan import Scan
from dranspose.core.triggermap import compile_mapping
from dranspose.local.redis_server import RedisServer
from dranspose.transport import resend


def test_recent_reports_keep_seconds_and_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resend, "MAX_ITEMS", 5)
    recent = resend.RecentReports()
    recent.add(0.0, [1, 2])
    recent.add(1.0, [3, 4])
    recent.add(5.5, [5])  # the batch of t=0 is older than KEEP_S (5 s)
    assert recent.take_all(5.5) == [3, 4, 5] and recent.take_all(5.5) == []
    for t in range(4):
        recent.add(10.0 + t, [t, t])  # 8 items: the oldest batches go
    assert recent.take_all(13.0) == [2, 2, 3, 3]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer().start()
    yield srv
    srv.stop()


@pytest.mark.e2e  # real redis-server processes
def test_a_replaced_redis_is_noticed_once(server: RedisServer) -> None:
    client = redis.Redis.from_url(server.url)
    watch = resend.RedisRestarts()
    assert not watch.restarted(client, 0.0)  # first look: nothing to compare with
    assert not watch.restarted(client, 1.0)
    port = server.port
    server.stop()
    assert not watch.restarted(client, 2.0)  # down: not a restart (yet)
    replacement = RedisServer(port=port).start()
    try:
        client = redis.Redis.from_url(replacement.url)
        assert watch.restarted(client, 2.1) is False  # checked at most every 0.5 s
        assert watch.restarted(client, 3.0) and not watch.restarted(client, 4.0)
    finally:
        replacement.stop()


def test_a_completion_reported_twice_counts_once() -> None:
    scan = Scan(compile_mapping({"a": [[{"tags": ["generic"], "constraint": i}] for i in range(4)]}))
    scan.add_worker("w", ["generic"], 8)
    scan.assign_runs()
    scan.worker_done("w", [0, 1], results_sent=2, results=[0, 1])
    scan.worker_done("w", [0, 1], results_sent=2, results=[0, 1])  # sent again after a Redis restart
    scan.reducer_progress({"w": 2}, received=[("w", 0), ("w", 1)])
    assert scan.completed == 2 and scan.awaiting_count() == 0 and all(v == 0 for v in scan.awaiting.values() if v is not None)
