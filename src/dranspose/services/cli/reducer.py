"""``dranspose reducer --host H [-c CLASS] [-p 5000]``: the reducer; its results over HDF REST
on port 5000 by default (as before), its result socket bound at REDUCER_URL and advertised."""

from __future__ import annotations

import argparse

from dranspose.services.cli import add_common, settings_from


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p, advertise=True)
    p.add_argument("-c", "--class", "--reducerclass", dest="reducer_class", help="reducer class package.module:Class (env REDUCER_CLASS)")
    p.add_argument("--host", default="localhost", help="HTTP bind host (default localhost; 0.0.0.0: every interface)")
    p.add_argument("-p", "--port", type=int, default=5000, help="HTTP port of the results (default 5000)")
    p.add_argument("--reducer-url", help="where to bind for results (env REDUCER_URL)")
    p.add_argument("--name", default="reducer", help="reducer name (default reducer)")


def run(args: argparse.Namespace) -> int:
    from dranspose.services.reducer import Reducer
    from dranspose.services.runner import serve

    settings = settings_from(redis_url=args.redis_url, reducer_class=args.reducer_class, reducer_url=args.reducer_url,
                             advertise_host=args.advertise_host)
    serve(Reducer(args.name, settings, http_host=args.host, http_port=args.port))
    return 0
