"""``dranspose debugworker --host H -n NAME``: a worker that keeps the last events and serves
them over HTTP (``/api/v1/last_events``), as ``uvicorn dranspose.debug_worker:app``."""

from __future__ import annotations

import argparse
import os

from dranspose.services.cli import add_common


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--host", default="0.0.0.0", help="HTTP bind host (default 0.0.0.0, every interface, as before)")
    p.add_argument("-p", "--port", type=int, default=5000, help="HTTP port (default 5000)")
    p.add_argument("-n", "--name", help="worker name (env WORKER_NAME; default debugworker)")


def run(args: argparse.Namespace) -> int:
    from dranspose.config import Settings
    from dranspose.services.apps import create_debug_worker_app
    from dranspose.services.http import run_app
    from dranspose.store.connection import connect

    overrides = {"worker_name": args.name or os.environ.get("WORKER_NAME") or "debugworker"}
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    settings = Settings(**overrides)
    connect(settings.redis_url)
    run_app(create_debug_worker_app(settings), args.host, args.port, args.log_level.lower())
    return 0
