"""``uvicorn dranspose.debug_worker:app``: the debug worker (WORKER_NAME, WORKER_TAGS,
REDIS_URL from the environment). Built at first use: importing starts nothing."""

from __future__ import annotations

from dranspose.services.asgi import LazyApp


def _build() -> object:
    from dranspose.services.apps import create_debug_worker_app

    return create_debug_worker_app()


app = LazyApp(_build)
