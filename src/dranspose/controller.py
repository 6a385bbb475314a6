"""``uvicorn dranspose.controller:app``: the controller configured from the environment.

A thin module over :func:`dranspose.services.controller.create_app`; the app is built at its
first use, so importing this module starts nothing."""

from __future__ import annotations

from dranspose.services.asgi import LazyApp


def _build() -> object:
    from dranspose.config import Settings
    from dranspose.services.controller import create_app

    return create_app(Settings())


app = LazyApp(_build)
