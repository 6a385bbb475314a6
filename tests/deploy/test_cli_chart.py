"""The command line as the Helm chart and the old CLI call it (parsed, not run), the help
without a subcommand, unique worker names, and the module-level ASGI apps."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from dranspose.cli import build_parser
from dranspose.services.cli.worker import default_worker_name
from dranspose.transport.sockets import free_tcp_port
from tests.deploy.deployment import ROOT

# templates/*/deployment.yaml of felix-engelmann/dranspose-helm, as rendered
CHART = {
    "controller": ["controller", "--host", "0.0.0.0"],
    "reducer": ["reducer", "--host", "0.0.0.0", "-c", "src.reducer:Reducer"],
    "ingester": ["ingester", "--name", "eiger", "-c", "ZmqPullSingleIngester", "-u", "tcp://det:9999"],
    "http_ingester": ["http_ingester", "--name", "sardana", "-c", "dranspose.ingesters.http_sardana:app"],
    "worker": ["worker", "-c", "src.worker:Worker"],
    "extra_worker": ["worker", "-c", "src.worker:Other", "-n", "purple"],
    "debugworker": ["debugworker", "--host", "0.0.0.0", "-n", "debugworker"],
}


def parse(argv: list[str]) -> object:
    return build_parser().parse_args(argv)


def test_chart_commands_parse_as_the_chart_means_them() -> None:
    a = parse(CHART["controller"])
    assert (a.command, a.host, a.port) == ("controller", "0.0.0.0", 5000)
    a = parse(CHART["reducer"])
    assert (a.command, a.host, a.port, a.reducer_class) == ("reducer", "0.0.0.0", 5000, "src.reducer:Reducer")
    a = parse(CHART["ingester"])  # --name is the stream, as before
    assert (a.stream, a.ingester_class, a.upstream_url, a.ingester_name) == (["eiger"], "ZmqPullSingleIngester", ["tcp://det:9999"], None)
    a = parse(CHART["http_ingester"])
    assert (a.stream, a.app, a.port, a.host) == (["sardana"], "dranspose.ingesters.http_sardana:app", 5000, "0.0.0.0")
    a = parse(CHART["worker"])
    assert (a.worker_class, a.name) == ("src.worker:Worker", None)
    a = parse(CHART["extra_worker"])
    assert (a.worker_class, a.name) == ("src.worker:Other", "purple")
    a = parse(CHART["debugworker"])
    assert (a.command, a.host, a.name, a.port) == ("debugworker", "0.0.0.0", "debugworker", 5000)


def test_old_long_flags_and_short_forms() -> None:
    a = parse(["ingester", "-n", "pcap", "--ingesterclass", "ZmqSubPCAPIngester", "--upstream_url", "tcp://panda:8889"])
    assert (a.stream, a.ingester_class, a.upstream_url) == (["pcap"], "ZmqSubPCAPIngester", ["tcp://panda:8889"])
    assert parse(["worker", "--workerclass", "m:W", "--name", "w1"]).worker_class == "m:W"
    a = parse(["reducer", "--reducerclass", "m:R", "-p", "5001"])
    assert (a.reducer_class, a.port) == ("m:R", 5001)
    assert parse(["http_ingester", "-n", "s", "--ingesterapp", "m:app"]).app == "m:app"
    assert parse(["ingester", "--name", "a", "--name", "b", "-u", "x", "-u", "y", "-c", "C"]).stream == ["a", "b"]


def test_default_worker_names_are_unique() -> None:
    names = {default_worker_name() for _ in range(50)}
    assert len(names) == 50 and all(n.startswith("worker-") for n in names)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "dranspose.cli", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60)


@pytest.mark.e2e
def test_no_subcommand_prints_help() -> None:
    out = run_cli()
    assert out.returncode == 0 and "Traceback" not in out.stderr
    for command in ("controller", "ingester", "http_ingester", "worker", "debugworker", "reducer", "combined", "replay", "source"):
        assert command in out.stdout


@pytest.mark.e2e
def test_module_apps_import_without_state() -> None:
    code = (
        "import threading, dranspose.controller as c, dranspose.reducer as r, dranspose.debug_worker as d, "
        "dranspose.ingesters.http_sardana as h\n"
        "assert all(m.app._app is None for m in (c, r, d, h)), 'built at import'\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok')"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing may try to reach it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_uvicorn_serves_controller_and_reducer_modules(redis_url: str) -> None:
    """``uvicorn dranspose.controller:app`` and ``uvicorn dranspose.reducer:app``, configured
    from the environment: the reducer registers and advertises its result socket."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "REDIS_URL": redis_url,
           "REDUCER_URL": f"tcp://127.0.0.1:{free_tcp_port()}"}
    ctl, red = free_tcp_port(), free_tcp_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "uvicorn", f"dranspose.{mod}:app", "--host", "127.0.0.1", "--port", str(port)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for mod, port in (("controller", ctl), ("reducer", red))
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                cfg = httpx.get(f"http://127.0.0.1:{ctl}/api/v1/config", timeout=2).json()
                if cfg["reducer"] is not None:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline, [p.poll() for p in procs]
            time.sleep(0.1)
        assert cfg["reducer"]["url"] == env["REDUCER_URL"]
        assert httpx.get(f"http://127.0.0.1:{red}/api/v1/state", timeout=5).json()["name"] == "reducer"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
    for p in procs:  # uvicorn re-raises SIGTERM after a graceful shutdown
        err = p.stderr.read().decode() if p.stderr else ""
        assert p.returncode in (0, -15) and "Application shutdown complete" in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv", [["ingester", "--name", "x"], ["http_ingester"]])
def test_incomplete_commands_fail_clearly(argv: list[str], redis_url: str) -> None:
    out = run_cli(*argv, env={"REDIS_URL": redis_url})
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.strip()
