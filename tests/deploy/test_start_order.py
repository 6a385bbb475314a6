"""Any start order: a map accepted before its workers can serve it waits for them (and only
fails, with a reason, after ``worker_wait_timeout``); workers follow a reducer or an ingester
that restarts or moves; constructors do no I/O. Components in-process, real Redis/ZeroMQ."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import pytest

from dranspose.config import Settings
from dranspose.errors import RedisUnavailable
from dranspose.services.ingester import Ingester, StreamSpec
from dranspose.services.reducer import Reducer
from dranspose.services.worker import Worker
from dranspose.store.connection import connect
from dranspose.store.keys import Keys
from dranspose.transport.sockets import free_tcp_port
from tests.cluster import Cluster, passthrough
from tests.core.test_pipeline import REDUCER, WORKER, Upstream, vw


pytestmark = pytest.mark.e2e  # processes, servers, Redis

@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def register_ghost(redis_url: str, name: str = "ghost") -> None:
    """A worker that is registered (tags, presence) but never connects to anything."""
    client, keys = connect(redis_url), Keys()
    state = {"name": name, "kind": "worker", "tags": ["generic"], "capacity": 4, "service_uuid": "ghost-uuid"}
    client.set(keys.state("worker", name), json.dumps(state))
    client.sadd(keys.members("worker"), name)


def scan(cluster: Cluster, upstream: Upstream, n: int) -> dict[str, Any]:
    cluster.set_mapping({"a": [vw(i % 2) for i in range(n)]})
    for i in range(n + 2):
        upstream.send(f"m{i}".encode())
    return cluster.wait_finished()


def test_map_posted_before_workers_connect_waits_for_them(redis_url: str, upstream: Upstream) -> None:
    cluster = Cluster(redis_url, WORKER, REDUCER, {"a": (upstream.url, passthrough())}, nworkers=0).start()
    try:
        register_ghost(redis_url)  # registered, so the map is accepted, but not usable
        n = 10
        cluster.set_mapping({"a": [vw(i % 2) for i in range(n)]})
        cluster.wait_until(lambda: cluster.get("/api/v1/progress")["phase"] == "waiting for workers", "waiting", 10)
        for i in range(n + 2):
            upstream.send(f"m{i}".encode())
        time.sleep(0.5)
        progress = cluster.get("/api/v1/progress")
        assert progress["failed_events"] == 0 and progress["completed_events"] == 0  # nothing failed for want of workers
        cluster.add_worker("w0", wait=False)
        progress = cluster.wait_finished()
        assert progress["completed_events"] == n + 2 and progress["failed_events"] == 0
        assert progress["reason"] is None
    finally:
        cluster.stop()


@pytest.mark.allow_error_log
def test_no_usable_worker_ends_the_scan_as_failed_with_a_reason(
    redis_url: str, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRANSPOSE_WORKER_WAIT_TIMEOUT", "1.0")
    cluster = Cluster(redis_url, WORKER, REDUCER, {"a": (upstream.url, passthrough())}, nworkers=0).start()
    try:
        register_ghost(redis_url)
        t0 = time.monotonic()
        cluster.set_mapping({"a": [vw(0) for _ in range(5)]})
        progress = cluster.wait_finished(15)
        assert time.monotonic() - t0 >= 1.0
        assert progress["failed_events"] == 7 and progress["completed_events"] == 0
        assert "no usable worker for 1 s" in progress["reason"] and "ghost" in progress["reason"]
    finally:
        cluster.stop()


def test_map_without_any_worker_that_can_serve_it_is_refused(redis_url: str, upstream: Upstream) -> None:
    cluster = Cluster(redis_url, WORKER, REDUCER, {"a": (upstream.url, passthrough())}, nworkers=1).start()
    try:
        r = cluster.post("/api/v1/mapping", json={"a": [vw(0, tags=("gpu",))]})
        assert r.status_code == 400 and "gpu" in r.json()["detail"]
    finally:
        cluster.stop()


def test_workers_follow_a_reducer_and_an_ingester_that_restart_elsewhere(redis_url: str, upstream: Upstream) -> None:
    cluster = Cluster(redis_url, WORKER, REDUCER, {"a": (upstream.url, passthrough())}, nworkers=2).start()
    try:
        assert scan(cluster, upstream, 6)["failed_events"] == 0
        old = cluster.reducer
        cluster.stop_component("reducer")
        new = Reducer("reducer", cluster.settings(), REDUCER, http_port=None)  # a new port, a new service uuid
        cluster._launch("reducer", new)
        cluster.wait_until(
            lambda: all(w["reducer_uuid"] == str(new.service_uuid) for w in cluster.get("/api/v1/config")["workers"]),
            "workers reconnected to the new reducer",
        )
        assert new.url != old.url
        progress = scan(cluster, upstream, 6)
        assert progress["completed_events"] == 8 and progress["failed_events"] == 0
        assert new.total_processed == 10  # 6 data events + start and end at both workers
        cluster.stop_component("ingester-a")
        ing = Ingester("a-ingester", cluster.settings(), [StreamSpec("a", upstream.url, "PULL", passthrough())])
        cluster._launch("ingester-a", ing)
        def reconnected() -> bool:
            ings = cluster.get("/api/v1/config")["ingesters"]
            return any(i["service_uuid"] == str(ing.service_uuid) and {"w0", "w1"} <= set(i["workers"]) for i in ings)

        cluster.wait_until(reconnected, "workers reconnected to the new ingester")
        progress = scan(cluster, upstream, 4)
        assert progress["completed_events"] == 6 and progress["failed_events"] == 0
    finally:
        cluster.stop()


def test_constructors_do_no_io() -> None:
    """Nothing is bound, connected or started before start(): a dead Redis URL and a busy
    port only matter then, with a clear error."""
    busy = free_tcp_port()
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_tcp_port()}/0", reducer_url=f"tcp://127.0.0.1:{busy}",
                        ingester_url=f"tcp://127.0.0.1:{busy}")
    before = threading.active_count()
    reducer = Reducer("r", settings, REDUCER, http_port=busy)
    worker = Worker("w", settings, WORKER)
    ingester = Ingester("i", settings, [StreamSpec("a", "tcp://127.0.0.1:1", "PULL", passthrough())])
    assert threading.active_count() == before
    assert reducer.pull is None and reducer.url is None and reducer.http_url is None
    assert worker.reducer is None and not worker.dealers
    assert ingester.router is None and ingester.streams["a"].upstream is None
    for component in (reducer, worker, ingester):
        with pytest.raises(RedisUnavailable):
            component.start()
    assert threading.active_count() == before
