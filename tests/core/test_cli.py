"""The command line: components as real processes started with the old flags and environment
variables, the one-command demo, and the clear error when Redis is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Iterator

import httpx
import numpy as np
import pytest
import zmq

from dranspose.local.supervisor import Supervisor
from dranspose.transport.sockets import free_tcp_port

pytestmark = pytest.mark.e2e  # the CLI as deployed: processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dranspose(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dranspose.cli", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=timeout, cwd=ROOT)


def test_help_explains_commands_and_environment() -> None:
    out = dranspose("--help")
    assert out.returncode == 0
    for word in ("controller", "ingester", "worker", "reducer", "combined", "REDIS_URL", "INGESTER_URL"):
        assert word in out.stdout
    sub = dranspose("ingester", "--help")
    assert "-u" in sub.stdout and "ZmqPullSingleIngester" in sub.stdout


def test_missing_redis_is_one_clear_message() -> None:
    port = free_tcp_port()
    out = dranspose("worker", "-n", "w", "-c", "dranspose.demo:DemoWorker", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert out.returncode == 2
    assert "cannot reach Redis" in out.stderr and "Traceback" not in out.stderr


def test_combined_demo_runs_a_scan_and_exits() -> None:
    out = dranspose("combined", "--demo", "--demo-frames", "150", "--demo-rate", "0", "--demo-shape", "32x32",
                    "--controller-port", "0", "--reducer-port", "0", "--exit-when-done")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "private redis-server" in out.stdout
    assert "live results http://" in out.stdout
    assert "scan finished" in out.stdout and "152 events, 0 failed, 0 errors" in out.stdout


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_combined_stops_every_process_on_sigterm() -> None:
    """``kill``, systemd, ``docker stop`` and timeouts send SIGTERM: the components (each in
    its own session, out of reach of the terminal's signals) and the private Redis stop too."""
    proc = subprocess.Popen([sys.executable, "-m", "dranspose.cli", "combined", "--demo", "--demo-frames", "20", "--demo-rate", "0",
                             "--demo-shape", "16x16", "--controller-port", "0", "--reducer-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    children: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "running; Ctrl-C" in line:
                break
        else:
            pytest.fail(f"combined ended before running: {proc.wait()}")
        children = _children(proc.pid)
        assert len(children) >= 6  # redis-server, controller, reducer, ingester, two workers
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        if proc.poll() is None:  # a second SIGTERM while it stops (systemd may repeat it)
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "stopping" in proc.stdout.read()
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [c for c in children if _alive(c)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)


@pytest.fixture
def cli_pipeline(redis_url: str) -> Iterator[tuple[str, str, zmq.Socket]]:
    """controller, ingester, two workers and the reducer as CLI processes configured through
    the old environment variables."""
    up = zmq.Context.instance().socket(zmq.PUSH)
    up_port = up.bind_to_random_port("tcp://127.0.0.1")
    sup = Supervisor(log_level="WARNING")
    sup.env.update(
        REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), ROOT]), REDUCER_URL=f"tcp://127.0.0.1:{free_tcp_port()}",
        INGESTER_URL=f"tcp://127.0.0.1:{free_tcp_port()}", WORKER_CLASS="dranspose.demo:DemoWorker",
        REDUCER_CLASS="dranspose.demo:DemoReducer", DRANSPOSE_HEARTBEAT_INTERVAL="0.2", DRANSPOSE_PRESENCE_TTL="10",
    )
    ctl, red = free_tcp_port(), free_tcp_port()
    sup.spawn("controller", "controller", "--host", "127.0.0.1", "--port", str(ctl))
    sup.spawn("reducer", "reducer", "--host", "127.0.0.1", "-p", str(red))
    sup.spawn("ingester", "ingester", "-c", "ZmqPullSingleIngester", "-u", f"tcp://127.0.0.1:{up_port}", "-n", "det")
    sup.env["WORKER_NAME"] = "envworker"
    sup.spawn("worker0", "worker")
    del sup.env["WORKER_NAME"]
    sup.spawn("worker1", "worker", "-n", "flagworker")
    api = f"http://127.0.0.1:{ctl}"
    deadline = time.monotonic() + 60
    while True:
        try:
            cfg = httpx.get(f"{api}/api/v1/config").json()
            if cfg["reducer"] and len(cfg["workers"]) == 2 and cfg["ingesters"] and len(cfg["ingesters"][0]["workers"]) == 2:
                break
        except (httpx.HTTPError, ValueError):
            pass
        assert time.monotonic() < deadline, f"CLI pipeline did not start: {sup.exited()}"
        time.sleep(0.2)
    yield api, f"http://127.0.0.1:{red}/", up
    sup.stop_all()
    assert all(code == 0 for _name, code in sup.exited()), sup.exited()  # clean shutdown on SIGTERM
    up.close(0)


def test_scan_through_cli_processes_read_with_h5pyd(cli_pipeline: tuple[str, str, zmq.Socket]) -> None:
    import h5pyd

    from dranspose.protocols.stins import encode_end, encode_header, encode_image

    api, results, up = cli_pipeline
    names = sorted(w["name"] for w in httpx.get(f"{api}/api/v1/config").json()["workers"])
    assert names == ["envworker", "flagworker"]
    n = 12
    mapping = {"det": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}
    assert httpx.post(f"{api}/api/v1/mapping", json=mapping).status_code == 200
    up.send_multipart(encode_header(0, "scan.h5"))
    frames = [np.full((8, 8), i, dtype=np.uint16) for i in range(n)]
    for i, f in enumerate(frames):
        f[i % 8, (2 * i) % 8] = 1000 + i
        up.send_multipart(encode_image(i + 1, i, f))
    up.send_multipart(encode_end(n + 1))
    deadline = time.monotonic() + 30
    while not httpx.get(f"{api}/api/v1/progress").json()["finished"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with h5pyd.File(results, "r") as f:
        assert f.attrs["frames"] == n
        np.testing.assert_allclose(f["sum"][:], [float(x.sum()) for x in frames])
        np.testing.assert_array_equal(f["peak_y"][:], [i % 8 for i in range(n)])
        np.testing.assert_array_equal(f["peak_x"][:], [(2 * i) % 8 for i in range(n)])
    status = httpx.get(f"{api}/api/v1/status").json()
    assert status["error_count"] == 0


def test_the_controller_stops_on_sigterm_while_a_client_follows_its_log_stream(redis_url: str) -> None:
    """Its log stream never ends by itself: the server must end it when told to stop (it used to
    wait for the client for good)."""
    port = free_tcp_port()
    proc = subprocess.Popen([sys.executable, "-m", "dranspose.cli", "controller", "--host", "127.0.0.1", "--port", str(port)],
                            env=dict(os.environ, REDIS_URL=redis_url), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/config").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the controller did not start"
            time.sleep(0.1)
        with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/log_stream", timeout=30) as stream:
            assert stream.status_code == 200  # the server holds the request open now
            proc.send_signal(signal.SIGTERM)
            for _line in stream.iter_lines():  # it must end: a read timeout or a cut stream raises
                pass
        out, _ = proc.communicate(timeout=10)  # at most a read's second, far under the 5 s grace
        assert proc.returncode == 0, out
        assert "timeout graceful shutdown exceeded" not in out  # ended, not cancelled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
