"""The chart deployment's scan, shared by the loopback and the network-namespace tests:
Redis first (the chart's dependency), every dranspose component in a random order, the trigger
map posted as soon as the controller accepts it, then the synthetic detector; the scan must end
with exact accounting."""

from __future__ import annotations

import pickle
import random
import time
from typing import Any

from tests.deploy.deployment import Deployment

STREAM = "det"


def trigger_map(frames: int) -> dict[str, Any]:
    """Constraints spread over the workers; every 10th frame also to the debug worker."""
    return {
        STREAM: [
            [{"tags": ["generic"], "constraint": i % 4}] + ([{"tags": ["debugworker"]}] if i % 10 == 0 else [])
            for i in range(frames)
        ]
    }


def start_in_random_order(dep: Deployment, rng: random.Random) -> list[str]:
    """Redis, then every component except the detector in a random order; returns the order."""
    dep.start("redis")
    dep.wait_until(dep.redis_ping, "redis up", 30)
    order = [n for n in dep.specs if n not in ("redis", "detector")]
    rng.shuffle(order)
    for name in order:
        dep.start(name)
        time.sleep(rng.uniform(0, 0.5))
    return order


def post_map_when_accepted(dep: Deployment, mapping: dict[str, Any], timeout: float = 90) -> tuple[str, int]:
    """POST the map until the controller accepts it (as scan software does); (uuid, 400s seen)."""
    deadline = time.monotonic() + timeout
    refused = 0
    while True:
        try:
            r = dep.api("POST", "/api/v1/mapping", json=mapping)
            if r.status_code == 200:
                return str(r.json()), refused
            assert r.status_code == 400, r.text  # not ready yet: no ingester / worker registered
            refused += 1
        except Exception as exc:  # the controller is not up yet
            if not type(exc).__module__.startswith("httpx"):
                raise
        assert time.monotonic() < deadline, f"map never accepted\n{dep.logs()}"
        time.sleep(0.05)


def published_attrs(dep: Deployment, url: str) -> dict[str, Any]:
    """The reducer's root attributes, read over HDF REST at its advertised ``url``."""
    root = dep.get_url(f"{url}/").json()["root"]
    out = {}
    for name in ("results", "events"):
        out[name] = dep.get_url(f"{url}/groups/{root}/attributes/{name}").json()["value"]
    return out


def run_chart_scan(dep: Deployment, frames: int, rng: random.Random, finish_timeout: float = 120) -> dict[str, Any]:
    """Start everything, run one scan, check it; returns what was observed."""
    order = start_in_random_order(dep, rng)
    mapping_uuid, refused = post_map_when_accepted(dep, trigger_map(frames))
    dep.start("detector")
    total = frames + 2  # the STINS header and end messages are events too
    dep.wait_until(lambda: dep.api("GET", "/api/v1/progress").json()["finished"], "scan finished", finish_timeout)
    progress = dep.api("GET", "/api/v1/progress").json()
    status = dep.api("GET", "/api/v1/status").json()
    config = dep.api("GET", "/api/v1/config").json()
    assert progress["mapping_uuid"] == mapping_uuid
    assert progress["total_events"] == total
    assert progress["completed_events"] == total and progress["failed_events"] == 0, (progress, dep.logs())
    # the reducer's advertised HTTP URL is reachable, never 0.0.0.0
    reducer_http = next(iter(status["reducer"].values()))["http"]
    assert reducer_http and "0.0.0.0" not in reducer_http
    attrs = published_attrs(dep, reducer_http)
    sent = sum(int(w.get("results_sent", 0)) for w in config["workers"])
    assert attrs["events"] == list(range(total)), attrs  # every completed event reached the reducer
    assert attrs["results"] == sent  # and exactly the results the workers sent
    assert status["error_count"] == 0, status["errors"]
    # the debug worker kept the events sent to it
    raw = dep.http("debugworker", "GET", "/api/v1/last_events", params={"number": 3}).content
    kept = [e.event_number for e in pickle.loads(raw)]
    assert kept and set(kept) <= {0, total - 1, *(i + 1 for i in range(0, frames, 10))}, kept
    return {"order": order, "refused": refused, "progress": progress, "attrs": attrs, "status": status}
