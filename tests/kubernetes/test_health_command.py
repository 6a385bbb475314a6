"""``python -m dranspose.services.health``, the probe of workers and ingesters and the image's
HEALTHCHECK, run as a process against a real Redis and a real controller."""

from __future__ import annotations

import os
import subprocess
import sys

from dranspose.config import Settings
from dranspose.services.controller import create_app
from dranspose.services.http import BackgroundServer
from dranspose.services.worker import Worker
from dranspose.transport.sockets import free_tcp_port

import pytest

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)


def health(*args: str, redis_url: str) -> tuple[int, str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "REDIS_URL": redis_url}
    out = subprocess.run([sys.executable, "-m", "dranspose.services.health", *args], capture_output=True, text=True, check=False,
                         env=env, timeout=60)
    return out.returncode, out.stdout + out.stderr


def test_presence_of_this_hosts_component(redis_url: str) -> None:
    assert health("--kind", "worker", redis_url=redis_url)[0] == 1  # nothing runs yet
    worker = Worker("w-probe", Settings(redis_url=redis_url, heartbeat_interval=0.2), "tests.payloads.recording:RecordingWorker")
    worker.start_background()
    try:
        code, text = health("--kind", "worker", redis_url=redis_url)
        assert code == 0 and "worker w-probe: heartbeat" in text
        assert health("--kind", "ingester", redis_url=redis_url)[0] == 1
        assert health(redis_url=redis_url)[0] == 0 or _port_5000_busy()  # auto: any kind of this host
    finally:
        worker.stop()
        worker.join_background()
    code, text = health("--kind", "worker", redis_url=redis_url)
    assert code == 1 and "no live worker" in text
    code, text = health("--kind", "worker", redis_url="redis://127.0.0.1:1/0")
    assert code == 1 and "Redis" in text


def _port_5000_busy() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5000), timeout=0.5):
            return True
    except OSError:
        return False


def test_http_health_endpoint(redis_url: str) -> None:
    server = BackgroundServer(create_app(Settings(redis_url=redis_url))).start()
    try:
        code, text = health("--url", f"{server.url}/healthz", redis_url=redis_url)
        assert code == 0 and "HTTP 200" in text
        code, _ = health("--url", f"{server.url}/nothing-here", redis_url=redis_url)
        assert code == 1
    finally:
        server.stop()
    assert health("--url", f"http://127.0.0.1:{free_tcp_port()}/healthz", "--timeout", "1", redis_url=redis_url)[0] == 1
