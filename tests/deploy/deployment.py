"""Components started as the Helm chart starts them, each a process of its own, driven by name.

:class:`Deployment` is the API other tests (fault tests) use::

    dep.start(name)           # start (or start again) one component with its chart command
    dep.kill(name, sig)       # SIGKILL by default; waits until it is gone
    dep.restart(name)         # kill (if running) and start again, same command and environment
    dep.pause(name) / dep.resume(name)   # SIGSTOP / SIGCONT
    dep.alive(name), dep.log(name)       # running?  its stdout+stderr so far
    dep.api(method, path, ...)           # the controller's REST API (an httpx.Response)
    dep.http(name, method, path, ...)    # HTTP of any component that serves it

Two kinds: :class:`LoopbackDeployment` (every component on 127.0.0.1, HTTP ports moved apart
with ``--port``/``-p``) and ``NetnsDeployment`` (tests/deploy/netns.py: each component on its
own host, the chart's commands exactly). Redis is a component too (``redis``), so it can be
killed and restarted like the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from tests.deploy.chart import Spec
from tests.waiting import poll_until

ROOT = Path(__file__).resolve().parents[2]


def write_wrapper(bin_dir: Path) -> None:
    """A ``dranspose`` executable running this checkout's code with this interpreter (the
    chart's ``command: ["dranspose"]``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "dranspose"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dranspose.cli "$@"\n')
    exe.chmod(0o755)


@dataclass
class Running:
    spec: Spec
    proc: subprocess.Popen[bytes]
    log_path: Path


class Deployment:
    """Processes by component name; subclasses say where each runs and how to reach it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bin = workdir / "bin"
        write_wrapper(self.bin)
        self.specs: dict[str, Spec] = {}
        self.running: dict[str, Running] = {}
        self.starts: dict[str, int] = {}
        self.common_env: dict[str, str] = {}  # the chart's extraEnv: REDIS_URL, LOG_LEVEL, ...

    # ---- what subclasses provide
    def command(self, spec: Spec) -> list[str]:
        """The argv that runs ``spec`` where it belongs."""
        raise NotImplementedError

    def address(self, name: str) -> tuple[str, int]:
        """(host, port) the test reaches component ``name``'s HTTP server at."""
        raise NotImplementedError

    def in_client(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` where the test's client runs (its host's network)."""
        return fn()

    def run_client(self, fn: Callable[[httpx.Client], Any]) -> Any:
        """Call ``fn`` with an HTTP client that can reach the components."""

        def call() -> Any:
            with httpx.Client(timeout=10) as client:
                return fn(client)

        return self.in_client(call)

    def redis_url_for_client(self) -> str:
        raise NotImplementedError

    def redis_ping(self) -> bool:
        import redis

        def ping() -> bool:
            client = redis.Redis.from_url(self.redis_url_for_client(), socket_connect_timeout=1)
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        return bool(self.in_client(ping))

    # ---- environment
    def base_env(self) -> dict[str, str]:
        """What any process needs to run at all (not configuration): PATH, PYTHONPATH, HOME."""
        return {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "HOME": str(self.workdir),
        }

    def env_of(self, spec: Spec) -> dict[str, str]:
        """The whole environment of ``spec``'s process: nothing inherited from the test."""
        common = self.common_env if spec.program == "dranspose" else {}
        return {**self.base_env(), **common, **spec.env}

    # ---- driving components
    def add(self, spec: Spec) -> None:
        self.specs[spec.name] = spec

    def start(self, name: str) -> None:
        if self.alive(name):
            raise RuntimeError(f"{name} is already running")
        spec = self.specs[name]
        self.starts[name] = self.starts.get(name, 0) + 1
        log_path = self.workdir / f"{name}.{self.starts[name]}.log"
        out = open(log_path, "wb")
        proc = subprocess.Popen(self.command(spec), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.workdir, start_new_session=True, env={})
        out.close()
        self.running[name] = Running(spec, proc, log_path)

    def alive(self, name: str) -> bool:
        run = self.running.get(name)
        return run is not None and run.proc.poll() is None

    def send(self, name: str, sig: int) -> None:
        run = self.running[name]
        try:
            os.killpg(run.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 15.0) -> int | None:
        """Send ``sig`` and wait for the process to end; returns its exit code."""
        if not self.alive(name):
            return self.running[name].proc.returncode if name in self.running else None
        self.send(name, signal.SIGCONT)  # a paused process must be able to act on the signal
        self.send(name, sig)
        try:
            return self.running[name].proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(name, signal.SIGKILL)
            return self.running[name].proc.wait(5)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def pause(self, name: str) -> None:
        self.send(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.send(name, signal.SIGCONT)

    def log(self, name: str) -> str:
        """Every start's output of ``name``, oldest first."""
        parts = sorted(self.workdir.glob(f"{name}.*.log"), key=lambda p: int(p.suffixes[-2][1:]))
        return "".join(p.read_text(errors="replace") for p in parts)

    def logs(self) -> str:
        return "\n".join(f"===== {n}\n{self.log(n)[-4000:]}" for n in self.running)

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM everything (then SIGKILL what hangs); the exit codes by name."""
        codes: dict[str, int | None] = {}
        for name in list(self.running):
            if self.alive(name):
                self.send(name, signal.SIGCONT)
                self.send(name, signal.SIGTERM)
        for name in list(self.running):
            try:
                codes[name] = self.running[name].proc.wait(10)
            except subprocess.TimeoutExpired:
                self.send(name, signal.SIGKILL)
                codes[name] = self.running[name].proc.wait(5)
        return codes

    # ---- HTTP
    def http(self, name: str, method: str, path: str, **kw: Any) -> httpx.Response:
        host, port = self.address(name)
        return self.run_client(lambda c: c.request(method, f"http://{host}:{port}{path}", **kw))

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http("controller", method, path, **kw)

    def client_url(self, url: str) -> str:
        """``url`` as the test's client can use it (host names it cannot resolve replaced)."""
        return url

    def get_url(self, url: str, **kw: Any) -> httpx.Response:
        """GET an absolute URL (e.g. an advertised one) from where the test's client runs."""
        target = self.client_url(url)
        return self.run_client(lambda c: c.get(target, **kw))

    def wait_until(self, cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        poll_until(cond, what, timeout, context=self.logs)


class LoopbackDeployment(Deployment):
    """Every component on 127.0.0.1: the chart's commands with the HTTP port moved apart
    (``--port``/``-p``, since they all serve on 5000) and loopback URLs."""

    def __init__(self, workdir: Path, ports: dict[str, int], redis_port: int) -> None:
        super().__init__(workdir)
        self.ports = ports  # component name -> its HTTP port on loopback
        self.redis_port = redis_port

    def redis_url_for_client(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def command(self, spec: Spec) -> list[str]:
        env = self.env_of(spec)
        args = ["127.0.0.1" if a == "0.0.0.0" else a for a in spec.args]  # loopback only
        if spec.http_port is not None:
            args += ["--port" if args[0] == "controller" else "-p", str(self.ports[spec.name])]
        return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), spec.program, *args]

    def address(self, name: str) -> tuple[str, int]:
        return "127.0.0.1", self.ports[name]


class NetnsDeployment(Deployment):
    """Each component on its own host (tests/deploy/netns.py), the chart's commands exactly;
    the test's client on a host of its own (``client``)."""

    def __init__(self, workdir: Path, hosts: Any, placement: dict[str, str], redis_port: int = 6379) -> None:
        super().__init__(workdir)
        self.hosts = hosts
        self.placement = placement  # component name -> host name
        self.redis_port = redis_port

    def command(self, spec: Spec) -> list[str]:
        return list(self.hosts.wrap(self.placement[spec.name], [spec.program, *spec.args], self.env_of(spec)))

    def address(self, name: str) -> tuple[str, int]:
        port = self.specs[name].http_port
        assert port is not None, f"{name} serves no HTTP"
        return self.hosts.addresses[self.placement[name]], port

    def in_client(self, fn: Callable[[], Any]) -> Any:
        return self.hosts.in_host("client", fn)

    def client_url(self, url: str) -> str:
        """The hosts files are mounted for the components only: the test's client (a thread)
        reads its host names from here."""
        parts = httpx.URL(url)
        by_name = {self.hosts.hostname(h): addr for h, addr in self.hosts.addresses.items()}
        assert parts.host in by_name, f"{url}: not a host of this deployment"
        return str(parts.copy_with(host=by_name[parts.host]))

    def redis_url_for_client(self) -> str:
        return f"redis://{self.hosts.addresses[self.placement['redis']]}:{self.redis_port}/0"
