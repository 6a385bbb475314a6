"""The Helm chart's commands start a pipeline that completes a scan: components as separate
processes with only the chart's environment, started in a random order, the map posted as
soon as the controller accepts it (so the scan may have to wait for workers)."""

from __future__ import annotations

import random

from tests.deploy.conftest import FRAMES
from tests.deploy.deployment import Deployment
from tests.deploy.scenario import run_chart_scan


def _check_clean_stop(dep: Deployment) -> None:
    codes = dep.stop_all()
    assert all(code == 0 for name, code in codes.items() if name != "redis"), codes  # clean SIGTERM


def test_chart_commands_on_loopback(chart_loopback: Deployment, rng: random.Random) -> None:
    seen = run_chart_scan(chart_loopback, FRAMES, rng)
    assert seen["progress"]["completed_events"] == FRAMES + 2
    _check_clean_stop(chart_loopback)


def test_chart_commands_each_on_its_own_host(chart_netns: Deployment, rng: random.Random) -> None:
    seen = run_chart_scan(chart_netns, FRAMES, rng)
    # peers are found by their service names, never by a wildcard address
    config = chart_netns.api("GET", "/api/v1/config").json()
    assert all("0.0.0.0" not in i["url"] and "-ingester-" in i["url"] for i in config["ingesters"])
    assert "-reducer:" in config["reducer"]["url"]
    assert len({w["host"] for w in config["workers"]}) == 3  # two workers and the debug worker, own hosts
    assert seen["progress"]["failed_events"] == 0
    _check_clean_stop(chart_netns)
