"""Run a dranspose deployment as the CLI starts it: one subprocess per component, each with
only its own environment, on loopback; start, kill, restart, pause and resume by name.

The fault-matrix tests talk only to this interface (``start``/``kill``/``restart``/``pause``/
``resume``, ``controller_url``, ``upstream_url``), so the same tests can run on another
deployment (e.g. network namespaces) by providing a class with the same methods.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dranspose.local.redis_server import find_redis_server
from dranspose.transport.sockets import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = "tests.faults.payload:EventWorker"
REDUCER = "tests.faults.payload:FileReducer"


def _base_env() -> dict[str, str]:
    """What every process needs to run Python from this checkout, nothing of dranspose."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    for key in ("LANG", "LC_ALL", "VIRTUAL_ENV", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@dataclass
class LocalDeployment:
    """Redis, controller, reducer, one STINS ingester and ``nworkers`` workers."""

    nworkers: int = 3
    stream: str = "det"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dranspose-faults-")))
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. shorter timings (not by default)
    worker_gets_reducer_url: bool = False  # workers discover the reducer through Redis, as in the Helm chart
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        host = "127.0.0.1"
        self.redis_port = free_tcp_port()
        self.redis_url = f"redis://{host}:{self.redis_port}/0"
        self.controller_port = free_tcp_port()
        self.controller_url = f"http://{host}:{self.controller_port}"
        self.reducer_url = f"tcp://{host}:{free_tcp_port()}"
        self.reducer_http = free_tcp_port()
        self.ingester_url = f"tcp://{host}:{free_tcp_port()}"
        self.upstream_url = f"tcp://{host}:{free_tcp_port()}"  # the detector binds, the ingester connects
        self.results_dir = self.workdir / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)

    # ---- commands (the chart's: REDIS_URL everywhere, REDUCER_URL / INGESTER_URL only where bound)
    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        env = {**_base_env(), "REDIS_URL": self.redis_url, **self.extra_env}
        cli = [sys.executable, "-m", "dranspose.cli", "--log-level", "INFO"]
        if name == "redis":
            args = [find_redis_server(), "--port", str(self.redis_port), "--bind", "127.0.0.1"]
            args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
            return args, _base_env()
        if name == "controller":
            return [*cli, "controller", "--host", "127.0.0.1", "--port", str(self.controller_port)], env
        if name == "reducer":
            env.update(REDUCER_URL=self.reducer_url, REDUCER_CLASS=REDUCER, FAULT_RESULTS_DIR=str(self.results_dir))
            return [*cli, "reducer", "--host", "127.0.0.1", "-p", str(self.reducer_http)], env
        if name == "ingester":
            env.update(INGESTER_URL=self.ingester_url)
            name_args = ["--ingester-name", f"{self.stream}-ingester", "-n", self.stream]
            return [*cli, "ingester", *name_args, "-u", self.upstream_url, "-c", "ZmqPullStinsIngester"], env
        if name.startswith("worker"):
            if self.worker_gets_reducer_url:
                env["REDUCER_URL"] = self.reducer_url
            env["WORKER_CLASS"] = WORKER
            return [*cli, "worker", "-n", name, "--capacity", "8"], env
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return ["redis", "controller", "reducer", "ingester", *(f"worker{i}" for i in range(self.nworkers))]

    # ---- lifecycle by name
    def start(self, name: str | None = None) -> "LocalDeployment":
        for n in [name] if name else self.names:
            args, env = self.command(n)
            log = open(self.workdir / f"{n}.log", "ab")
            self.procs[n] = subprocess.Popen(args, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
            if n == "redis":
                self._wait_port(self.redis_port)
        return self

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def restart(self, name: str) -> None:
        if self.procs[name].poll() is None:
            self.kill(name)
        self.start(name)

    def pause(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- observation
    def reducer_results(self) -> tuple[list[int], bool]:
        """Events processed by the newest reducer process, and whether its finish ran."""
        path = self.results_dir / f"reducer-{self.procs['reducer'].pid}.txt"
        if not path.exists():
            return [], False
        lines = path.read_text().split()
        return [int(x) for x in lines if x != "finish"], "finish" in lines

    def get(self, path: str, timeout: float = 5) -> Any:
        r = httpx.get(self.controller_url + path, timeout=timeout)
        r.raise_for_status()
        return r.json()

    @staticmethod
    def _wait_port(port: int, timeout: float = 10) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"nothing listens on port {port}")
