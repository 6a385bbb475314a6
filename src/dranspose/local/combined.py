"""``dranspose combined``: the whole pipeline on one machine (the main job).

Starts, each as its own OS process on loopback: a private ``redis-server`` (unless a Redis URL
is given), the controller, one ingester per stream, N workers and the reducer. With ``--demo``
it also plays a synthetic STINS detector and runs the example analysis
(:mod:`dranspose.demo`), printing progress and the URL of the live results. Ctrl-C stops every
process cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from dranspose.errors import ConfigError
from dranspose.local.redis_server import RedisServer
from dranspose.local.supervisor import Supervisor
from dranspose.transport.sockets import free_tcp_port

log = logging.getLogger(__name__)

DEMO_WORKER = "dranspose.demo:DemoWorker"
DEMO_REDUCER = "dranspose.demo:DemoReducer"
DEMO_PERIOD = 500  # frames per turn of the demo's moving spot


@dataclass
class StreamArg:
    name: str
    ingester_class: str
    upstream_url: str


def _parse_stream(text: str) -> StreamArg:
    parts = text.split(",", 2)
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("--stream takes NAME,INGESTER_CLASS,UPSTREAM_URL")
    return StreamArg(*parts)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("shape must look like 512x512") from None


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--worker-class", help="worker class package.module:Class (env WORKER_CLASS)")
    p.add_argument("-r", "--reducer-class", help="reducer class package.module:Class (env REDUCER_CLASS)")
    p.add_argument("-s", "--stream", action="append", type=_parse_stream, default=[],
                   help="NAME,INGESTER_CLASS,UPSTREAM_URL (repeatable), e.g. eiger,ZmqPullSingleIngester,tcp://det:9999")
    p.add_argument("--nworkers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--controller-port", type=int, default=5000, help="controller HTTP port (default 5000; 0 = any free)")
    p.add_argument("--reducer-port", type=int, default=5001, help="results HTTP port (default 5001; 0 = any free)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind host of controller and reducer")
    p.add_argument("--demo", action="store_true", help="also play a synthetic STINS detector into the example analysis")
    p.add_argument("--demo-frames", type=int, default=1000, help="frames per demo scan (default 1000)")
    p.add_argument("--demo-rate", type=float, default=200.0, help="demo frames per second (default 200; 0 = as fast as possible)")
    p.add_argument("--demo-shape", type=_shape, default=(256, 256), help="demo frame shape (default 256x256)")
    p.add_argument("--demo-scans", type=int, default=1, help="demo scans to run (default 1)")
    p.add_argument("--exit-when-done", action="store_true", help="with --demo: exit after the demo scans (status 1 on errors)")


def _stop_on_termination() -> dict[int, Any]:
    """SIGTERM (``kill``, systemd, ``docker stop``, a timeout) and SIGHUP (the terminal closed)
    stop every process the way Ctrl-C does, instead of ending this one and leaving the
    components and Redis running. Returns the handlers it replaced (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def interrupt(signum: int, _frame: Any) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a second one must not cut the stopping short
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}


def run(args: argparse.Namespace) -> int:
    worker_class = args.worker_class or os.environ.get("WORKER_CLASS")
    reducer_class = args.reducer_class or os.environ.get("REDUCER_CLASS")
    streams: list[StreamArg] = list(args.stream)
    demo_url = None
    if args.demo:
        worker_class = worker_class or DEMO_WORKER
        reducer_class = reducer_class or DEMO_REDUCER
        demo_url = f"tcp://127.0.0.1:{free_tcp_port()}"
        streams.append(StreamArg("demo", "ZmqPullSingleIngester", demo_url))
    if not streams:
        raise ConfigError("no streams: give --stream NAME,CLASS,URL (repeatable) or --demo")
    if not worker_class or not reducer_class:
        raise ConfigError("give --worker-class and --reducer-class (or WORKER_CLASS/REDUCER_CLASS), or --demo")

    redis_server = None
    redis_url = args.redis_url
    if redis_url:
        from dranspose.store.connection import connect

        connect(redis_url)  # one clear message when the given Redis is not there
    else:
        redis_server = RedisServer(end_with_this_process=True).start()  # gone with this process, even killed
        redis_url = redis_server.url
        print(f"dranspose: private redis-server at {redis_url}")
    ctl_port = args.controller_port or free_tcp_port()
    red_port = args.reducer_port or free_tcp_port()
    sup = Supervisor(log_level=args.log_level if args.log_level.upper() != "INFO" else "WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sup.env.update(REDIS_URL=redis_url, REDUCER_URL=f"tcp://127.0.0.1:{free_tcp_port()}", WORKER_CLASS=worker_class)
    sup.env.pop("SERVICE_REDIS_DSN", None)
    controller = f"http://{args.host}:{ctl_port}"
    replaced = _stop_on_termination()
    try:
        sup.spawn("controller", "controller", "--host", args.host, "--port", str(ctl_port))
        sup.spawn("reducer", "reducer", "-c", reducer_class, "--host", args.host, "-p", str(red_port))
        for s in streams:
            sup.spawn(f"ingester {s.name}", "ingester", "-c", s.ingester_class, "-u", s.upstream_url, "-n", s.name,
                      "-i", f"tcp://127.0.0.1:{free_tcp_port()}")
        for i in range(args.nworkers):
            sup.spawn(f"worker {i}", "worker", "-n", f"worker{i}", "-c", worker_class)
        _wait_ready(sup, controller, [s.name for s in streams], args.nworkers)
        results = f"http://{args.host}:{red_port}/"
        print(f"dranspose: controller {controller}/ (status page, REST API at {controller}/docs)")
        print(f"dranspose: live results {results}  (h5pyd.File('{results}', 'r'), silx, H5Web)")
        print(f"dranspose: live viewer {results}viewer  (open in a browser: plots update while the scan runs)")
        if args.demo:
            failed = _run_demo(sup, controller, demo_url, args)
            if args.exit_when_done:
                return 1 if failed else 0
        print("dranspose: running; Ctrl-C (or SIGTERM) stops every process")
        while True:
            gone = sup.exited()
            if gone:
                raise ConfigError(f"component(s) exited: {gone}; stopping")
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\ndranspose: stopping")
        return 0
    finally:
        sup.stop_all()
        if redis_server is not None:
            redis_server.stop()
        for sig, handler in replaced.items():
            signal.signal(sig, handler)


def _wait_ready(sup: Supervisor, controller: str, streams: list[str], nworkers: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        gone = sup.exited()
        if gone:
            raise ConfigError(f"component(s) exited during start-up: {gone}")
        try:
            cfg = httpx.get(f"{controller}/api/v1/config", timeout=2).json()
            served = {s for ing in cfg["ingesters"] for s in ing.get("streams", [])}
            reachable = all(
                len(ing.get("workers", [])) >= nworkers for ing in cfg["ingesters"]
            )
            if set(streams) <= served and len(cfg["workers"]) >= nworkers and cfg["reducer"] and reachable:
                return
            last_error = f"{len(served)} streams, {len(cfg['workers'])} workers, reducer {'up' if cfg['reducer'] else 'down'}"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise ConfigError(f"pipeline not ready after {timeout} s: {last_error}")


def _run_demo(sup: Supervisor, controller: str, url: str | None, args: argparse.Namespace) -> bool:
    """Run the demo scans; returns True when any event failed or any component counted errors."""
    from dranspose.demo.frames import demo_stins
    from dranspose.sources.streamer import Streamer

    any_failed = False
    for scan in range(args.demo_scans):
        n = args.demo_frames
        mapping = {"demo": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}
        uuid = httpx.post(f"{controller}/api/v1/mapping", json=mapping, timeout=10).json()
        print(f"dranspose: demo scan {scan + 1}/{args.demo_scans} (mapping {uuid}): {n} frames "
              f"{'x'.join(map(str, args.demo_shape))} uint16 at {args.demo_rate or 'max'} Hz")
        streamer = Streamer(url or "", "PUSH")
        sender = threading.Thread(
            target=lambda: (streamer.wait_for_peer(30), streamer.send(demo_stins(n, args.demo_shape, "uint16", DEMO_PERIOD), args.demo_rate or None)),
            daemon=True,
        )
        t0 = time.monotonic()
        sender.start()
        progress: dict[str, Any] = {}
        last_print = 0.0
        while True:
            progress = httpx.get(f"{controller}/api/v1/progress", timeout=5).json()
            now = time.monotonic()
            if progress.get("finished") or now - last_print >= 1.0:
                done = progress.get("completed_events", 0)
                rate = done / max(now - t0, 1e-9)
                print(f"  {done}/{progress.get('total_events')} events, {progress.get('failed_events', 0)} failed, "
                      f"{rate:.0f} events/s, {progress.get('phase')}", flush=True)
                last_print = now
            if progress.get("finished"):
                break
            gone = sup.exited()
            if gone:
                raise ConfigError(f"component(s) exited during the demo: {gone}")
            time.sleep(0.1)
        sender.join(10)
        streamer.close(1)
        status = httpx.get(f"{controller}/api/v1/status", timeout=5).json()
        elapsed = time.monotonic() - t0
        print(f"dranspose: scan finished in {elapsed:.1f} s: {progress['completed_events']} events, "
              f"{progress.get('failed_events', 0)} failed, {status['error_count']} errors")
        any_failed = any_failed or bool(progress.get("failed_events")) or bool(status["error_count"])
    return any_failed
