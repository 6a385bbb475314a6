"""A whole dranspose pipeline in one test process, on random ports, with real Redis, ZeroMQ
and HTTP (after dask's ``gen_cluster``): controller app under uvicorn, ingesters, workers and
reducer each running their data loop in a thread."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import zmq

from dranspose.config import Settings
from dranspose.protocols.base import PassThroughCutter, StreamCutter
from dranspose.services.component import Component, install_log_forwarding, remove_log_forwarding
from dranspose.services.controller import create_app
from dranspose.services.http import BackgroundServer
from dranspose.services.ingester import Ingester, StreamSpec
from dranspose.services.reducer import Reducer
from dranspose.services.worker import Worker
from dranspose.sources.streamer import Streamer


@dataclass
class Running:
    component: Component
    thread: threading.Thread


@dataclass
class Cluster:
    redis_url: str
    worker_class: str
    reducer_class: str
    streams: dict[str, tuple[Any, ...]]  # name -> (upstream url, cutter factory[, socket pattern])
    nworkers: int = 2
    worker_tags: list[list[str]] | None = None
    capacity: int = 32
    pattern: str = "PULL"
    reducer_http: bool = False
    running: dict[str, Running] = field(default_factory=dict)
    controller: BackgroundServer | None = None
    client: httpx.Client | None = None

    def settings(self, **kw: Any) -> Settings:
        base = dict(
            redis_url=self.redis_url, heartbeat_interval=0.2, presence_ttl=5.0, worker_capacity=self.capacity,
            reducer_url="tcp://127.0.0.1:0", ingester_url="tcp://127.0.0.1:0",
        )
        base.update(kw)
        return Settings(**base)

    def _launch(self, key: str, component: Component) -> None:
        def main() -> None:
            component.start_background()
            try:
                component.run()  # type: ignore[attr-defined]
            finally:
                component.stop()
                component.join_background()

        t = threading.Thread(target=main, name=key, daemon=True)
        t.start()
        self.running[key] = Running(component, t)

    def start(self) -> "Cluster":
        install_log_forwarding(self.settings(), "cluster")  # once per process, as `serve` does
        self.controller = BackgroundServer(create_app(self.settings())).start()
        self.client = httpx.Client(base_url=self.controller.url, timeout=10)
        reducer = Reducer("reducer", self.settings(), self.reducer_class, http_port=0 if self.reducer_http else None)
        self._launch("reducer", reducer)
        for name, (url, cutter, *pattern) in self.streams.items():
            spec = StreamSpec(name, url, pattern[0] if pattern else self.pattern, cutter)
            self._launch(f"ingester-{name}", Ingester(f"{name}-ingester", self.settings(), [spec]))
        for i in range(self.nworkers):
            self.add_worker(f"w{i}", wait=False)
        self.wait_ready()
        return self

    def add_worker(self, name: str, tags: list[str] | None = None, wait: bool = True) -> Worker:
        if tags is None and self.worker_tags is not None:
            tags = self.worker_tags[int(name[1:]) % len(self.worker_tags)] if name[1:].isdigit() else None
        settings = self.settings(worker_tags=tags or ["generic"])
        worker = Worker(name, settings, self.worker_class)
        self._launch(f"worker-{name}", worker)
        if wait:
            self.wait_until(lambda: self._reachable(name), "worker joined")
        return worker

    def stop_component(self, key: str) -> None:
        run = self.running.pop(key)
        run.component.stop()
        run.thread.join(10)

    def config_names(self, kind: str) -> list[str]:
        cfg = self.get("/api/v1/config")
        items = cfg[kind] if kind != "reducer" else [cfg["reducer"]] if cfg["reducer"] else []
        return [c["name"] for c in items]

    def _reachable(self, worker: str) -> bool:
        """Reached by every ingester and connected to the reducer: what the controller needs
        before it admits the worker to a scan (broadcast events reach only admitted workers)."""
        cfg = self.get("/api/v1/config")
        state = next((w for w in cfg["workers"] if w["name"] == worker), None)
        return (
            state is not None
            and all(worker in ing.get("workers", []) for ing in cfg["ingesters"])
            and _on_reducer(state, cfg)
        )

    def wait_ready(self, timeout: float = 20) -> None:
        def ready() -> bool:
            cfg = self.get("/api/v1/config")
            served = {s for i in cfg["ingesters"] for s in i["streams"]}
            return (
                served >= set(self.streams)
                and len(cfg["workers"]) >= self.nworkers
                and cfg["reducer"] is not None
                and all(len(i.get("workers", [])) >= self.nworkers for i in cfg["ingesters"])
                and all(_on_reducer(w, cfg) for w in cfg["workers"])
            )

        self.wait_until(ready, "cluster ready", timeout)

    def wait_until(self, cond: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not reached in {timeout} s; status {self.get('/api/v1/status')}")
            time.sleep(0.05)

    def wait_until_value(self, value: Callable[[], Any], what: str, timeout: float = 20) -> Any:
        """Like :meth:`wait_until`, returning the first truthy value."""
        box: list[Any] = []
        self.wait_until(lambda: bool(box.append(value()) or box[-1]), what, timeout)
        return box[-1]

    def get(self, path: str, **kw: Any) -> Any:
        assert self.client is not None
        r = self.client.get(path, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, **kw: Any) -> httpx.Response:
        assert self.client is not None
        return self.client.post(path, **kw)

    def set_mapping(self, mapping: dict[str, Any], **params: Any) -> str:
        r = self.post("/api/v1/mapping", json=mapping, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_finished(self, timeout: float = 30) -> dict[str, Any]:
        self.wait_until(lambda: self.get("/api/v1/progress")["finished"], "scan finished", timeout)
        return self.get("/api/v1/progress")

    @property
    def reducer(self) -> Reducer:
        return self.running["reducer"].component  # type: ignore[return-value]

    def stop(self) -> None:
        """Controller first (it would report workers leaving mid-scan as dead), then the rest."""
        if self.client is not None:
            self.client.close()
        if self.controller is not None:
            self.controller.stop()
        self.client, self.controller = None, None  # a second stop() does nothing
        for key in list(self.running):
            self.running[key].component.stop()
        for key in list(self.running):
            self.running[key].thread.join(10)
        remove_log_forwarding()
        self.running.clear()


def _on_reducer(worker_state: dict[str, Any], cfg: dict[str, Any]) -> bool:
    """The worker advertises a connection to the running reducer process."""
    reducer = cfg["reducer"]
    return reducer is not None and worker_state.get("reducer_uuid") == reducer.get("service_uuid")


class Upstream:
    """A device stand-in: a bound PUSH socket on a random loopback port."""

    def __init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.PUSH)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.url = f"tcp://127.0.0.1:{port}"

    def send(self, *parts: bytes) -> None:
        self.sock.send_multipart(list(parts))

    def close(self) -> None:
        self.sock.close(linger=0)


@dataclass
class ServedReplay:
    """``dranspose replay --port 0`` in a thread of this process, as ``serve_replay`` starts it."""

    url: str
    thread: threading.Thread
    stop_event: threading.Event
    summary: list[Any]  # the replay's summary once it returned

    def stop(self, timeout: float = 30) -> None:
        """Ends the serving replay and waits for it (a second call does nothing)."""
        self.stop_event.set()
        self.thread.join(timeout)


def passthrough(typ: str = "raw") -> Callable[[], StreamCutter]:
    return lambda: PassThroughCutter(typ)


# the types of the factory fixtures in tests/conftest.py
StartCluster = Callable[..., Cluster]
NewUpstream = Callable[[], Upstream]
NewStreamer = Callable[..., Streamer]
Spawn = Callable[..., "subprocess.Popen[str]"]
ServeReplay = Callable[..., ServedReplay]
