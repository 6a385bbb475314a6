"""The HTTP side of replay: HDF REST over the reducer's ``publish`` plus the parameter API.

``ReplayServer(source, params, port)`` serves, from a uvicorn thread,
* the HDF REST API of ``dranspose.hdfrest.create_app(source)`` (``source`` has ``.publish`` and
  optionally ``.publish_rlock``; the ReducerHooks adapter is one), and
* ``POST|GET /api/v1/parameter/{name}`` (raw bytes body) and ``GET /api/v1/parameters``.
``port=0`` picks a free port (read it from ``.port`` after ``start()``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response

from dranspose.replay.params import ParameterSet
from dranspose.services.access import protect
from dranspose.services.http import BackgroundServer

log = logging.getLogger(__name__)


def parameter_router(params: ParameterSet) -> APIRouter:
    """Routes for reading and setting parameters while a replay runs."""
    router = APIRouter()

    @router.post("/api/v1/parameter/{name}")
    async def post_parameter(name: str, request: Request) -> str:
        data = await request.body()
        log.info("parameter %s set (%d bytes)", name, len(data))
        return params.set(name, data)

    @router.get("/api/v1/parameter/{name}")
    async def get_parameter(name: str) -> Response:
        data = params.get(name)
        if data is None:
            raise HTTPException(status_code=404, detail=f"parameter {name!r} not found")
        return Response(content=data, media_type="application/x.bytes")

    @router.get("/api/v1/parameters")
    async def get_parameters() -> list[dict[str, Any]]:
        return params.describe()

    return router


def build_app(source: Any, params: ParameterSet, feedback: Any = None) -> FastAPI:
    """The replay app: HDF REST over ``source.publish``, the parameter routes and, with a
    ``FeedbackHub``, its Server-Sent Events at ``/feedback`` (as the reducer service serves)."""
    try:
        from dranspose.hdfrest import create_app  # type: ignore[attr-defined]
    except ImportError as exc:
        log.error("HDF REST is not available (%s): serving parameters only", exc)
        app = FastAPI()
    else:
        app = create_app(source)
    protect(app)  # token on parameter changes, Host check, body size (as the reducer)
    app.include_router(parameter_router(params))
    from dranspose import viewer

    viewer.mount(app, source)  # the live viewer at /viewer
    if feedback is not None:
        from dranspose.hdfrest import mount_feedback

        mount_feedback(app, feedback)
    return app


class ReplayServer(BackgroundServer):
    """The replay app under uvicorn in a background thread; ``start()`` returns once it
    accepts connections (a busy port is a ConfigError)."""

    def __init__(self, source: Any, params: ParameterSet, port: int, host: str = "localhost", feedback: Any = None) -> None:
        super().__init__(build_app(source, params, feedback), host, port)

    def start(self, timeout: float = 20.0) -> "ReplayServer":
        super().start(timeout)
        log.info("replay serving HDF REST and parameters on http://%s:%d", self.host, self.port)
        return self
