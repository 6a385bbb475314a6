"""``dranspose http_ingester --name STREAM -c APP``: an ingester fed by HTTP POSTs (Sardana),
served by uvicorn as the ASGI app ``APP`` (default ``dranspose.ingesters.http_sardana:app``),
on port 5000 by default. The stream name reaches the app as INGESTER_STREAMS, as before."""

from __future__ import annotations

import argparse
import json
import os
import sys

from dranspose.services.cli import add_common

DEFAULT_APP = "dranspose.ingesters.http_sardana:app"


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p, advertise=True)
    p.add_argument("-n", "--name", "--stream", dest="stream", action="append", required=True, help="stream name (repeatable)")
    p.add_argument("-c", "--app", "--ingesterapp", dest="app", default=DEFAULT_APP, help=f"ASGI app module:attr (default {DEFAULT_APP})")
    p.add_argument("--host", default="0.0.0.0", help="HTTP bind host (default 0.0.0.0, every interface, as before)")
    p.add_argument("-p", "--port", type=int, default=5000, help="HTTP port (default 5000)")
    p.add_argument("-i", "--ingester-url", help="where to bind for workers (env INGESTER_URL)")


def run(args: argparse.Namespace) -> int:
    from dranspose.services.http import run_app
    from dranspose.store.connection import connect

    os.environ["INGESTER_STREAMS"] = json.dumps(args.stream)
    for flag, env in ((args.redis_url, "REDIS_URL"), (args.ingester_url, "INGESTER_URL"),
                      (args.advertise_host, "DRANSPOSE_ADVERTISE_HOST")):
        if flag:
            os.environ[env] = flag
    from dranspose.config import Settings

    connect(Settings().redis_url)  # one clear error before uvicorn starts
    run_app(_import_app(args.app), args.host, args.port, args.log_level.lower())
    return 0


def _import_app(path: str) -> object:
    """``module:attr`` -> the object (any ASGI app); a clear error otherwise."""
    import importlib

    from dranspose.errors import ConfigError

    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"app {path!r} must look like 'package.module:app'")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for app {path!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
