"""``dranspose.ingesters.http_sardana:app``: the Sardana HTTP ingester as an ASGI app. The stream
comes from INGESTER_STREAMS (``dranspose http_ingester --name STREAM`` sets it), the worker
socket from INGESTER_URL. Built at first use: importing starts nothing."""

from __future__ import annotations

from dranspose.services.asgi import LazyApp


def _build() -> object:
    from dranspose.services.apps import create_http_ingester_app

    return create_http_ingester_app()


app = LazyApp(_build)
