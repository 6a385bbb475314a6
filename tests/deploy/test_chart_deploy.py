"""The Helm chart's commands start a pipeline that completes a scan: components as separate
processes with only the chart's environment, started in a random order, the map posted as
soon as the controller accepts it (so the scan may have to wait for workers)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dranspose.transport.sockets import free_tcp_port
from tests.deploy import chart
from tests.deploy.conftest import FRAMES
from tests.deploy.deployment import Deployment, LoopbackDeployment
from tests.deploy.scenario import post_map_when_accepted, published_attrs, run_chart_scan


pytestmark = pytest.mark.e2e  # processes, servers, Redis

def _check_clean_stop(dep: Deployment) -> None:
    codes = dep.stop_all()
    assert all(code == 0 for name, code in codes.items() if name != "redis"), codes  # clean SIGTERM


def _settled(dep: Deployment) -> bool:
    """Every component the command started ran its full collection between scans and froze
    the survivors (``gc`` in its advertised state)."""
    config = dep.api("GET", "/api/v1/config").json()
    states = [*config["workers"], *config["ingesters"], config["reducer"]]
    return all(st["gc"]["enabled"] and st["gc"]["frozen"] > 0 and st["gc"]["last_ms"] is not None for st in states)


def test_chart_commands_on_loopback(chart_loopback: Deployment, rng: random.Random) -> None:
    seen = run_chart_scan(chart_loopback, FRAMES, rng)
    assert seen["progress"]["completed_events"] == FRAMES + 2
    chart_loopback.wait_until(lambda: _settled(chart_loopback), "components settle their heap between scans", 15)
    _check_clean_stop(chart_loopback)


def test_chart_commands_each_on_its_own_host(chart_netns: Deployment, rng: random.Random) -> None:
    seen = run_chart_scan(chart_netns, FRAMES, rng)
    # peers are found by their service names, never by a wildcard address
    config = chart_netns.api("GET", "/api/v1/config").json()
    assert all("0.0.0.0" not in i["url"] and "-ingester-" in i["url"] for i in config["ingesters"])
    assert "-reducer:" in config["reducer"]["url"]
    assert len({w["host"] for w in config["workers"]}) == 3  # two workers and the debug worker, own hosts
    assert seen["progress"]["failed_events"] == 0
    # every data loop, each process on its own host, publishes its time on a core and waiting for one
    status = chart_netns.api("GET", "/api/v1/status").json()
    names = {f"{kind}:{name}" for kind in ("ingester", "worker", "reducer") for name in status["components"][kind]}
    assert len(names) >= 5 and set(status["data_loops"]) == names
    assert all(v["on_core_s"] > 0 and v["waiting_for_core_s"] >= 0 for v in status["data_loops"].values())
    _check_clean_stop(chart_netns)


def test_chart_http_ingester_on_loopback(tmp_path: Path) -> None:
    """``http_ingester --name STREAM -c dranspose.ingesters.http_sardana:app``: Sardana POSTs
    become events of a scan like any stream."""
    ports = {"controller": free_tcp_port(), "reducer": free_tcp_port(), "ingester-sardana": free_tcp_port()}
    dep = LoopbackDeployment(tmp_path, ports, redis_port=free_tcp_port())
    dep.common_env = chart.common_env(f"redis://127.0.0.1:{dep.redis_port}/0")
    for spec in (
        chart.redis(dep.redis_port, bind="127.0.0.1"),
        chart.controller(),
        chart.reducer(f"tcp://127.0.0.1:{free_tcp_port()}"),
        chart.http_ingester("sardana", f"tcp://127.0.0.1:{free_tcp_port()}"),
        chart.worker(index=0),
    ):
        dep.add(spec)
    try:
        dep.start("redis")
        dep.wait_until(dep.redis_ping, "redis up", 30)
        for name in ("ingester-sardana", "worker-0", "reducer", "controller"):
            dep.start(name)
        n = 5
        post_map_when_accepted(dep, {"sardana": [[{"tags": ["generic"], "constraint": 0}] for _ in range(n)]})
        post = lambda path, body: dep.http("ingester-sardana", "POST", path, json=body)  # noqa: E731
        desc = {"serialno": 3, "scandir": "/tmp", "title": "ascan m 0 1 4 0.1", "column_desc": [{"name": "point_nb"}]}
        dep.wait_until(lambda: post("/v1/data_desc", desc).status_code == 200, "http ingester up", 60)
        for i in range(n):
            assert post("/v1/record_data", {"timestamp": 0.1 * i, "point_nb": i, "m": i / 4}).status_code == 200
        assert post("/v1/record_end", {}).status_code == 200
        dep.wait_until(lambda: dep.api("GET", "/api/v1/progress").json()["finished"], "scan finished", 60)
        progress = dep.api("GET", "/api/v1/progress").json()
        assert progress["completed_events"] == n + 2 and progress["failed_events"] == 0
        reducer_http = next(iter(dep.api("GET", "/api/v1/status").json()["reducer"].values()))["http"]
        assert published_attrs(dep, reducer_http)["events"] == list(range(n + 2))
    finally:
        codes = dep.stop_all()
    assert all(code == 0 for name, code in codes.items() if name != "redis"), (codes, dep.logs())
