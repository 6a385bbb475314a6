"""App factory of the HDF REST server: :func:`create_app` and :func:`mount`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from dranspose.hdfrest.routes import build_router


def mount(app: FastAPI, source: Any, prefix: str = "") -> None:
    """Add the HDF REST routes over ``source`` to ``app`` under ``prefix`` (e.g. ``""``).

    ``source`` is an object with a ``publish`` attribute (read on every request) and
    optionally ``publish_rlock`` (entered for every read), or a plain dict. No path under
    ``/api/`` is claimed. CORS headers and preflights are handled by the routes themselves.
    """
    app.include_router(build_router(source), prefix=prefix.rstrip("/"))


def create_app(source: Any) -> FastAPI:
    """A FastAPI app serving ``source`` (see :func:`mount`) read-only over HDF REST."""
    app = FastAPI(title="dranspose HDF REST", docs_url=None, redoc_url=None, openapi_url=None)
    mount(app, source)
    return app
