"""The ``dranspose`` command: one subcommand per component, plus combined, replay, source.

Flags override the environment variables of :mod:`dranspose.config` (old names included).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Callable, Sequence

from dranspose.config import Settings
from dranspose.errors import ConfigError, DransposeError, RedisUnavailable

ENV_HELP = """environment (read by every component; flags win):
  REDIS_URL / SERVICE_REDIS_DSN   Redis URL (default redis://localhost:6379/0)
  INGESTER_URL                    where an ingester binds for workers (default tcp://localhost:10000)
  INGESTER_STREAMS                stream names of an ingester (JSON list or comma-separated)
  UPSTREAM_URL                    the upstream device URL of an ingester
  REDUCER_URL                     where the reducer binds for results (default tcp://localhost:10200)
  WORKER_CLASS / REDUCER_CLASS    payload classes as package.module:Class
  WORKER_NAME / WORKER_TAGS       worker name and tags (default tags: generic)
  DUMP_PATH                       ingester: record every event to exactly this file (appended)
  DRANSPOSE_DUMP_ROOT             every dump file must lie under this directory (default: cwd)
  LOG_LEVEL                       DEBUG, INFO, WARNING, ...
  Every setting also reads DRANSPOSE_<NAME> (e.g. DRANSPOSE_WORKER_CAPACITY)."""


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def cmd_controller(args: argparse.Namespace) -> int:
    import uvicorn

    from dranspose.services.controller import create_app

    settings = _settings(redis_url=args.redis_url, event_timeout=args.event_timeout)
    from dranspose.store.connection import connect

    connect(settings.redis_url)  # one clear error before uvicorn starts
    # uvicorn shuts down gracefully, then re-raises the signal to the previous handler: exit 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from dranspose.services.access import warn_if_exposed

    warn_if_exposed("controller", args.host)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level.lower(), access_log=False)
    return 0


def cmd_ingester(args: argparse.Namespace) -> int:
    from dranspose.services.ingester import Ingester, StreamSpec
    from dranspose.services.ingesters import resolve
    from dranspose.services.runner import serve

    settings = _settings(redis_url=args.redis_url, ingester_url=args.ingester_url, dump_path=args.dump_path)
    streams = args.stream or settings.ingester_streams
    upstreams = args.upstream_url or ([settings.upstream_url] if settings.upstream_url else [])
    class_name = args.ingester_class or settings.ingester_class
    if not streams or not upstreams or not class_name:
        raise ConfigError("an ingester needs -n STREAM, -u UPSTREAM_URL and -c CLASS (or INGESTER_STREAMS, UPSTREAM_URL, INGESTER_CLASS)")
    if len(upstreams) != len(streams):
        raise ConfigError(f"{len(streams)} stream names but {len(upstreams)} upstream URLs: give one -u per -n")
    pattern, factory = resolve(class_name)
    specs = [StreamSpec(name, url, pattern, factory) for name, url in zip(streams, upstreams)]
    name = args.name or settings.ingester_name or f"{'-'.join(streams)}-ingester"
    serve(Ingester(name, settings, specs))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from dranspose.services.runner import serve
    from dranspose.services.worker import Worker

    settings = _settings(
        redis_url=args.redis_url, worker_class=args.worker_class, reducer_url=args.reducer_url,
        worker_tags=args.tags, worker_capacity=args.capacity,
    )
    name = args.name or settings.worker_name or f"worker-{socket.gethostname()}-{os.getpid()}"
    serve(Worker(name, settings))
    return 0


def cmd_reducer(args: argparse.Namespace) -> int:
    from dranspose.services.reducer import Reducer
    from dranspose.services.runner import serve

    settings = _settings(redis_url=args.redis_url, reducer_class=args.reducer_class, reducer_url=args.reducer_url)
    serve(Reducer(args.name, settings, http_host=args.host, http_port=args.port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dranspose",
        description="Live analysis of detector streams: a constrained map-reduce on Redis and ZeroMQ.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="logging level (env LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=fn)
        if name not in ("replay", "source"):
            p.add_argument("--redis-url", help="Redis URL (env REDIS_URL)")
        return p

    p = add("controller", "run the controller (REST API on --port, default 5000)", cmd_controller)
    p.add_argument("--host", default="localhost", help="HTTP bind host (default localhost)")
    p.add_argument("--port", type=int, default=5000, help="HTTP port (default 5000)")
    p.add_argument(
        "--event-timeout", type=float,
        help="treat a worker whose process_event runs longer than this many seconds as dead (env DRANSPOSE_EVENT_TIMEOUT)",
    )

    p = add("ingester", "run an ingester: one upstream stream -> workers", cmd_ingester)
    p.add_argument("-c", "--class", dest="ingester_class", help="ingester class, e.g. ZmqPullSingleIngester, or module:CutterClass")
    p.add_argument("-u", "--upstream-url", action="append", help="upstream device URL (repeat with -n for several streams)")
    p.add_argument("-n", "--stream", action="append", help="stream name (repeatable)")
    p.add_argument("-i", "--ingester-url", help="where to bind for workers (env INGESTER_URL)")
    p.add_argument("--name", help="ingester name (default <streams>-ingester)")
    p.add_argument("--dump-path", help="record every event to dump files with this prefix (env DUMP_PATH)")

    p = add("worker", "run a worker process", cmd_worker)
    p.add_argument("-n", "--name", help="worker name (env WORKER_NAME; default worker-<host>-<pid>)")
    p.add_argument("-c", "--class", dest="worker_class", help="worker class package.module:Class (env WORKER_CLASS)")
    p.add_argument("-t", "--tags", help="comma-separated tags (env WORKER_TAGS; default generic)")
    p.add_argument("-r", "--reducer-url", help="reducer result URL (env REDUCER_URL)")
    p.add_argument("--capacity", type=int, help="events in flight (credits, default 32)")

    p = add("reducer", "run the reducer (results over HDF REST on --port)", cmd_reducer)
    p.add_argument("-c", "--class", dest="reducer_class", help="reducer class package.module:Class (env REDUCER_CLASS)")
    p.add_argument("--host", default="localhost", help="HTTP bind host (default localhost)")
    p.add_argument("-p", "--port", type=int, default=5001, help="HTTP port of the results (default 5001)")
    p.add_argument("--reducer-url", help="where to bind for results (env REDUCER_URL)")
    p.add_argument("--name", default="reducer", help="reducer name")

    from dranspose.local import combined
    from dranspose.replay import runner as replay_cli
    from dranspose.sources import streamer as source_cli

    for name, help, module in (
        ("combined", "run the whole pipeline on this machine (see --demo)", combined),
        ("replay", "run worker and reducer code on recorded dump files", replay_cli),
        ("source", "stream captures or synthetic detector data over ZeroMQ", source_cli),
    ):
        module.configure_parser(add(name, help, module.run))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except RedisUnavailable as exc:
        print(f"dranspose {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, DransposeError) as exc:
        print(f"dranspose {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
