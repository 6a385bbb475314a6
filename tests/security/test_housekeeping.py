"""Housekeeping in Redis: per-scan streams go away after the scan, announcements do not
repeat the map."""

from __future__ import annotations

import json

import redis
import zmq

from dranspose.store.keys import Keys
from tests.cluster import Cluster, passthrough


def test_scan_streams_expire_and_updates_carry_no_map(redis_url: str, upstream: tuple[zmq.Socket, str]) -> None:
    sock, url = upstream
    cluster = Cluster(redis_url, "tests.payloads.recording:RecordingWorker", "tests.payloads.recording:RecordingReducer",
                      {"a": (url, passthrough("Ta"))}, nworkers=1).start()
    r = redis.Redis.from_url(redis_url)
    keys = Keys()
    try:
        n = 2000
        big = {"a": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}
        first = cluster.set_mapping(big)
        for i in range(n + 2):
            sock.send(b"x")
        cluster.wait_finished()
        cluster.wait_until(lambda: r.ttl(keys.done(first)) > 0 and r.ttl(keys.assigned(first)) > 0, "scan streams expire")
        assert r.ttl(keys.done(first)) <= 60
        entries = [json.loads(f[b"msg"]) for _id, f in r.xrange(keys.updates())]
        announced = [e for e in entries if e.get("type") == "mapping"]
        assert announced and announced[-1]["uuid"] == first and "source" not in announced[-1]
        assert max(len(f[b"msg"]) for _id, f in r.xrange(keys.updates())) < 1000  # the map is ~90 kB
        assert json.loads(r.get(keys.mapping()))["uuid"] == first  # the one full copy
        uuids = [first]
        for _ in range(3):  # every later scan deletes the earlier scans' streams (made again or not)
            uuids.append(cluster.set_mapping({"a": [[{"tags": ["generic"], "constraint": 0}]]}))
            # a late report of the scan just replaced may make its stream again; the next scan deletes it
            assert not any(r.exists(keys.done(u), keys.assigned(u)) for u in uuids[:-2])
            for i in range(3):
                sock.send(b"y")
            assert cluster.wait_finished()["completed_events"] == 3
            assert r.exists(keys.assigned(uuids[-1]))
    finally:
        cluster.stop()
