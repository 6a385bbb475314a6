"""The fault tests' deployment: the Helm chart's components (tests/deploy), each a process
started by the CLI with only its own environment, plus a STINS detector process, on loopback
or each on its own network-namespace host.

:class:`FaultDeployment` is all the fault tests use: ``start``/``kill``/``pause``/``resume`` by
component name (``redis``, ``controller``, ``reducer``, ``ingester``, ``worker0``...),
``api`` (the controller's REST API), ``start_detector``/``detector_status``,
``reducer_results`` (what the newest reducer process holds) and ``logs``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from dranspose.transport.sockets import free_tcp_port
from tests.deploy import chart
from tests.deploy.chart import Spec
from tests.deploy.deployment import Deployment, LoopbackDeployment, NetnsDeployment

WORKER = "tests.faults.payload:EventWorker"
REDUCER = "tests.faults.payload:FileReducer"
STREAM = "det"


class FaultDeployment:
    """Redis, controller, reducer, one STINS ingester and ``nworkers`` named workers (the
    chart's ``extra_worker`` form, ``worker -c CLASS -n NAME``), default settings."""

    def __init__(self, dep: Deployment, nworkers: int, upstream_url: str, detector_bind: str) -> None:
        self.dep = dep
        self.nworkers = nworkers
        self.stream = STREAM
        self.upstream_url = upstream_url  # where the ingester connects
        self.detector_bind = detector_bind
        self.results_dir = dep.workdir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.status_path = dep.workdir / "detector.json"

    @property
    def names(self) -> list[str]:
        return ["redis", "controller", "reducer", "ingester", *(f"worker{i}" for i in range(self.nworkers))]

    def add_specs(self, redis: Spec, reducer_url: str, ingester_url: str) -> None:
        self.dep.add(redis)
        self.dep.add(chart.controller())
        reducer = chart.reducer(reducer_url, REDUCER)
        reducer.env["FAULT_RESULTS_DIR"] = str(self.results_dir)  # the payload's own setting
        self.dep.add(reducer)
        ingester = chart.ingester(self.stream, self.upstream_url, ingester_url, "ZmqPullStinsIngester")
        ingester.name = "ingester"
        self.dep.add(ingester)
        for i in range(self.nworkers):
            worker = chart.extra_worker(f"worker{i}", WORKER)
            worker.name = f"worker{i}"
            self.dep.add(worker)

    # ---- lifecycle
    def start(self, name: str | None = None) -> "FaultDeployment":
        for n in [name] if name else self.names:
            self.dep.start(n)
            if n == "redis" and name is None:
                self.dep.wait_until(self.dep.redis_ping, "redis answers", 15)
        return self

    def kill(self, name: str) -> None:
        self.dep.kill(name)

    def pause(self, name: str) -> None:
        self.dep.pause(name)

    def resume(self, name: str) -> None:
        self.dep.resume(name)

    def stop(self) -> None:
        self.dep.stop_all()

    def log(self, name: str) -> str:
        return self.dep.log(name)

    def logs(self) -> str:
        return self.dep.logs()

    # ---- the detector
    def start_detector(self, frames: int, rate: float) -> None:
        args = ["-m", "tests.faults.detector", "--url", self.detector_bind, "--frames", str(frames),
                "--rate", str(rate), "--status", str(self.status_path)]
        self.status_path.unlink(missing_ok=True)
        self.dep.add(Spec("detector", args, program=sys.executable))
        if self.dep.alive("detector"):
            self.dep.kill("detector")
        self.dep.start("detector")

    def detector_status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.status_path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {"sent": 0, "dropped": 0, "last_frame_at": None}

    # ---- observation
    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.dep.api(method, path, **kw)

    def get(self, path: str) -> Any:
        r = self.api("GET", path, timeout=5)
        r.raise_for_status()
        return r.json()

    def reducer_results(self) -> tuple[list[int], bool]:
        """Events processed by the newest reducer process, and whether its finish ran."""
        files = sorted(self.results_dir.glob("reducer-*.txt"))
        if not files:
            return [], False
        lines = files[-1].read_text().split()
        return [int(x) for x in lines if x != "finish"], "finish" in lines


def loopback(workdir: Path, nworkers: int) -> FaultDeployment:
    """Every component on 127.0.0.1."""
    redis_port = free_tcp_port()
    dep = LoopbackDeployment(workdir, {"controller": free_tcp_port(), "reducer": free_tcp_port()}, redis_port)
    dep.common_env = chart.common_env(f"redis://127.0.0.1:{redis_port}/0")
    det = f"tcp://127.0.0.1:{free_tcp_port()}"
    fd = FaultDeployment(dep, nworkers, upstream_url=det, detector_bind=det)
    fd.add_specs(chart.redis(redis_port, bind="127.0.0.1"), f"tcp://127.0.0.1:{free_tcp_port()}",
                 f"tcp://127.0.0.1:{free_tcp_port()}")
    return fd


def netns(workdir: Path, nworkers: int) -> tuple[FaultDeployment, Any]:
    """Each component (and the detector, and the test's client) on its own network-namespace
    host; returns the deployment and its :class:`tests.deploy.netns.Hosts` (to clean up)."""
    from tests.deploy import netns as hosts_module

    names = ["redis", "controller", "reducer", "ingester", *(f"worker{i}" for i in range(nworkers)), "detector"]
    hosts = hosts_module.Hosts([*names, "client"]).create()
    dep = NetnsDeployment(workdir, hosts, {n: n for n in names})
    name = hosts.hostname
    dep.common_env = chart.common_env(f"redis://{name('redis')}:6379/0")
    fd = FaultDeployment(dep, nworkers, upstream_url=f"tcp://{name('detector')}:9999", detector_bind="tcp://*:9999")
    fd.add_specs(chart.redis(), f"tcp://{name('reducer')}:10010", f"tcp://{name('ingester')}:10010")
    return fd, hosts
