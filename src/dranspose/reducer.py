"""``uvicorn dranspose.reducer:app``: the reducer (REDUCER_CLASS, REDUCER_URL, REDIS_URL from
the environment) running inside its HTTP app. Built at first use: importing starts nothing."""

from __future__ import annotations

from dranspose.services.asgi import LazyApp


def _build() -> object:
    from dranspose.services.apps import create_reducer_app

    return create_reducer_app()


app = LazyApp(_build)
