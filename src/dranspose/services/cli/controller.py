"""``dranspose controller --host H [--port 5000]``: the REST API and the scan scheduler."""

from __future__ import annotations

import argparse

from dranspose.services.cli import add_common, settings_from


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--host", default="localhost", help="HTTP bind host (default localhost; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=5000, help="HTTP port (default 5000)")
    p.add_argument(
        "--event-timeout", type=float,
        help="treat a worker whose process_event runs longer than this many seconds as dead (env DRANSPOSE_EVENT_TIMEOUT)",
    )


def run(args: argparse.Namespace) -> int:
    from dranspose.services.controller import create_app
    from dranspose.store.connection import connect

    settings = settings_from(redis_url=args.redis_url, event_timeout=args.event_timeout)
    connect(settings.redis_url)  # one clear error before uvicorn starts
    from dranspose.services.access import warn_if_exposed
    from dranspose.services.http import run_app

    warn_if_exposed("controller", args.host)
    run_app(create_app(settings), args.host, args.port, args.log_level.lower())
    return 0
