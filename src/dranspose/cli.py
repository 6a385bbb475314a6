"""The ``dranspose`` command: one subcommand per component, plus combined, replay, source.

Flags override the environment variables of :mod:`dranspose.config` (old names included).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Protocol, Sequence

from dranspose.errors import ConfigError, DransposeError, RedisUnavailable
from dranspose.local import combined
from dranspose.replay import runner as replay_cli
from dranspose.services.cli import controller as controller_cli
from dranspose.services.cli import debugworker as debugworker_cli
from dranspose.services.cli import http_ingester as http_ingester_cli
from dranspose.services.cli import ingester as ingester_cli
from dranspose.services.cli import reducer as reducer_cli
from dranspose.services import frame_memory, gc_pause, io_threads, parent_watch
from dranspose.services.cli import worker as worker_cli
from dranspose.sources import streamer as source_cli

ENV_HELP = """environment (read by every component; flags win):
  REDIS_URL / SERVICE_REDIS_DSN   Redis URL (default redis://localhost:6379/0)
  INGESTER_URL                    where an ingester binds for workers (default tcp://localhost:10000)
  INGESTER_STREAMS                stream names of an ingester (JSON list or comma-separated)
  UPSTREAM_URL                    the upstream device URL of an ingester
  REDUCER_URL                     where the reducer binds for results (default tcp://localhost:10200)
  DRANSPOSE_ADVERTISE_HOST        host name peers use for a component bound to 0.0.0.0
                                  (workers find reducer and ingesters through Redis: they need
                                  neither REDUCER_URL nor INGESTER_URL)
  WORKER_CLASS / REDUCER_CLASS    payload classes as package.module:Class
  WORKER_NAME / WORKER_TAGS       worker name and tags (default tags: generic)
  DUMP_PATH                       ingester: record every event to exactly this file (appended)
  DRANSPOSE_DUMP_ROOT             every dump file must lie under this directory (default: cwd)
  LOG_LEVEL                       DEBUG, INFO, WARNING, ...
  Every setting also reads DRANSPOSE_<NAME> (e.g. DRANSPOSE_WORKER_CAPACITY)."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


class _Command(Protocol):
    """A subcommand module: its flags and its entry point."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Every subcommand, registered explicitly (an import error is an error, never a missing command).
COMMANDS: list[tuple[str, str, _Command]] = [
    ("controller", "run the controller (REST API on --port, default 5000)", controller_cli),
    ("ingester", "run an ingester: --name STREAM -c CLASS -u UPSTREAM_URL", ingester_cli),
    ("http_ingester", "run an HTTP ingester (Sardana POSTs): --name STREAM -c APP", http_ingester_cli),
    ("worker", "run a worker process", worker_cli),
    ("debugworker", "run a worker that serves its last events over HTTP", debugworker_cli),
    ("reducer", "run the reducer (results over HDF REST on --port, default 5000)", reducer_cli),
    ("combined", "run the whole pipeline on this machine (see --demo)", combined),  # type: ignore[list-item]
    ("replay", "run worker and reducer code on recorded dump files", replay_cli),  # type: ignore[list-item]
    ("source", "stream captures or synthetic detector data over ZeroMQ", source_cli),  # type: ignore[list-item]
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dranspose",
        description="Live analysis of detector streams: a constrained map-reduce on Redis and ZeroMQ.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="logging level (env LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help, module in COMMANDS:
        p = sub.add_parser(name, help=help, description=help, epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=module.run)
        if name == "combined":
            p.add_argument("--redis-url", help="Redis URL (env REDIS_URL; default: a private redis-server)")
        module.configure_parser(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no subcommand: the help, as before
        parser.print_help()
        return 0
    _setup_logging(args.log_level)
    parent_watch.end_with_supervisor()  # started by `dranspose combined`: end with it, even if it is killed
    gc_pause.enable()  # this process runs components: full collections between scans only
    frame_memory.keep_frame_buffers()  # freed frame buffers are reused, not faulted in anew
    io_threads.yield_to_data_loops()  # before the first socket: ZeroMQ's I/O threads do not preempt the loops
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
