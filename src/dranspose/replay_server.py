"""The HTTP side of replay: HDF REST over the reducer's ``publish`` plus the parameter API.

``ReplayServer(source, params, port)`` serves, from a uvicorn thread,
* the HDF REST API of ``dranspose.hdfrest.create_app(source)`` (``source`` has ``.publish`` and
  optionally ``.publish_rlock``; the ReducerHooks adapter is one), and
* ``POST|GET /api/v1/parameter/{name}`` (raw bytes body) and ``GET /api/v1/parameters``.
``port=0`` picks a free port (read it from ``.port`` after ``start()``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response

from dranspose.errors import ConfigError
from dranspose.replay_params import ParameterSet

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
    app.include_router(parameter_router(params))
    if feedback is not None:
        from dranspose.hdfrest import mount_feedback

        mount_feedback(app, feedback)
    return app


class ReplayServer:
    """uvicorn in a background thread; ``start()`` returns once it accepts connections."""

    def __init__(self, source: Any, params: ParameterSet, port: int, host: str = "localhost", feedback: Any = None) -> None:
        self.app = build_app(source, params, feedback)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 20.0) -> None:
        try:
            sock = socket.create_server((self.host, self.port), reuse_port=False)
        except OSError as exc:
            raise ConfigError(f"cannot serve on {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="replay-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"HTTP server on port {self.port} did not start: {self._error!r}")
            time.sleep(0.005)
        log.info("replay serving HDF REST and parameters on http://%s:%d", self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
