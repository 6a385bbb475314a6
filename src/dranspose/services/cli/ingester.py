"""``dranspose ingester --name STREAM -c CLASS -u URL``: one upstream stream -> workers.

``--name``/``-n`` is the *stream* name, as in the old CLI and the Helm chart; the ingester's
own name is derived (``<streams>-ingester``) unless ``--ingester-name`` (or INGESTER_NAME).
"""

from __future__ import annotations

import argparse

from dranspose.errors import ConfigError
from dranspose.services.cli import add_common, settings_from


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p, advertise=True)
    p.add_argument("-c", "--class", "--ingesterclass", dest="ingester_class",
                   help="ingester class, e.g. ZmqPullSingleIngester, or module:CutterClass (env INGESTER_CLASS)")
    p.add_argument("-u", "--upstream-url", "--upstream_url", dest="upstream_url", action="append",
                   help="upstream device URL (repeat with -n for several streams; env UPSTREAM_URL)")
    p.add_argument("-n", "--name", "--stream", dest="stream", action="append",
                   help="stream name (repeatable; env INGESTER_STREAMS)")
    p.add_argument("-i", "--ingester-url", help="where to bind for workers (env INGESTER_URL)")
    p.add_argument("--ingester-name", help="the ingester's own name (env INGESTER_NAME; default <streams>-ingester)")
    p.add_argument("--dump-path", help="record every event to dump files with this prefix (env DUMP_PATH)")


def run(args: argparse.Namespace) -> int:
    from dranspose.services.ingester import Ingester, StreamSpec
    from dranspose.services.ingesters import resolve
    from dranspose.services.runner import serve

    settings = settings_from(redis_url=args.redis_url, ingester_url=args.ingester_url, dump_path=args.dump_path,
                             advertise_host=args.advertise_host)
    streams = args.stream or settings.ingester_streams
    upstreams = args.upstream_url or ([settings.upstream_url] if settings.upstream_url else [])
    class_name = args.ingester_class or settings.ingester_class
    if not streams or not upstreams or not class_name:
        raise ConfigError("an ingester needs --name STREAM, -u UPSTREAM_URL and -c CLASS (or INGESTER_STREAMS, UPSTREAM_URL, INGESTER_CLASS)")
    if len(upstreams) != len(streams):
        raise ConfigError(f"{len(streams)} stream names but {len(upstreams)} upstream URLs: give one -u per --name")
    pattern, factory = resolve(class_name)
    specs = [StreamSpec(name, url, pattern, factory) for name, url in zip(streams, upstreams)]
    name = args.ingester_name or settings.ingester_name or f"{'-'.join(streams)}-ingester"
    serve(Ingester(name, settings, specs))
    return 0
