"""The Helm chart's commands and environment (felix-engelmann/dranspose-helm,
``templates/*/deployment.yaml``; COMPAT §5), written out here since the chart is not part of
this repository. One place for the loopback and the network-namespace deployments.

``REDIS_URL`` (and ``LOG_LEVEL``, ``BEAMLINE``) for every component; ``REDUCER_URL`` only for
the reducer; ``INGESTER_URL`` only for ingesters; workers get neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WORKER = "tests.deploy.payload:CountWorker"
REDUCER = "tests.deploy.payload:CountReducer"
HTTP_APP = "dranspose.ingesters.http_sardana:app"


@dataclass
class Spec:
    """One component as the chart runs it: ``dranspose *args`` with ``env`` (plus REDIS_URL)."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    http_port: int | None = None  # the port it serves HTTP on, if any
    program: str = "dranspose"


def redis(port: int = 6379, bind: str = "0.0.0.0") -> Spec:
    """The chart's Redis dependency (a plain redis-server, no persistence)."""
    return Spec("redis", ["--port", str(port), "--bind", bind, "--protected-mode", "no", "--save", "", "--appendonly", "no"],
                program="redis-server")


def detector(frames: int, bind: str = "tcp://*:9999", shape: tuple[int, int] = (32, 32)) -> Spec:
    """A synthetic STINS detector (PUSH), as a test stands in for one."""
    return Spec("detector", ["source", "synth", "stins", "-u", bind, "-n", str(frames),
                             "--shape", str(shape[0]), str(shape[1]), "--peer-timeout", "120"])


def controller() -> Spec:
    return Spec("controller", ["controller", "--host", "0.0.0.0"], http_port=5000)


def reducer(reducer_url: str, reducer_class: str = REDUCER) -> Spec:
    return Spec("reducer", ["reducer", "--host", "0.0.0.0", "-c", reducer_class], {"REDUCER_URL": reducer_url}, http_port=5000)


def ingester(stream: str, upstream_url: str, ingester_url: str, ingester_class: str = "ZmqPullSingleIngester") -> Spec:
    return Spec(f"ingester-{stream}", ["ingester", "--name", stream, "-c", ingester_class, "-u", upstream_url],
                {"INGESTER_URL": ingester_url})


def http_ingester(stream: str, ingester_url: str) -> Spec:
    return Spec(f"ingester-{stream}", ["http_ingester", "--name", stream, "-c", HTTP_APP], {"INGESTER_URL": ingester_url},
                http_port=5000)


def worker(worker_class: str = WORKER, index: int = 0) -> Spec:
    """templates/worker: ``worker -c CLASS``, no name (unique default names)."""
    return Spec(f"worker-{index}", ["worker", "-c", worker_class])


def extra_worker(name: str, worker_class: str = WORKER, tags: str | None = None) -> Spec:
    """templates/extra_worker: ``worker -c CLASS -n NAME`` and optionally WORKER_TAGS."""
    return Spec(f"worker-{name}", ["worker", "-c", worker_class, "-n", name], {"WORKER_TAGS": tags} if tags else {})


def debugworker() -> Spec:
    return Spec("debugworker", ["debugworker", "--host", "0.0.0.0", "-n", "debugworker"],
                {"WORKER_TAGS": '["debugworker"]'}, http_port=5000)


def common_env(redis_url: str) -> dict[str, str]:
    """What the chart's ``extraEnv`` gives every component."""
    return {"REDIS_URL": redis_url, "LOG_LEVEL": "INFO", "BEAMLINE": "test"}
