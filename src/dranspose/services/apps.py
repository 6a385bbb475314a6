"""App factories for the components served by an ASGI server: the reducer, the debug worker
and the HTTP (Sardana) ingester, each running its data loop for the app's lifespan.
Configured from :class:`Settings` (the environment when none is given); nothing runs until
the app's lifespan starts."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from dranspose.config import Settings
from dranspose.errors import ConfigError
from dranspose.services.asgi import component_lifespan


def create_reducer_app(settings: Settings | None = None) -> FastAPI:
    """The reducer's HTTP app (HDF REST, state, feedback) with the reducer running inside."""
    from dranspose.services.reducer import Reducer

    reducer = Reducer("reducer", settings or Settings(), http_port=None)
    return reducer.build_app(lifespan=component_lifespan(reducer))


def create_debug_worker_app(settings: Settings | None = None) -> FastAPI:
    """The debug worker (name from WORKER_NAME, default ``debugworker``) and its endpoints."""
    from dranspose.services.debug_worker import DebugWorker, add_routes

    settings = settings or Settings()
    worker = DebugWorker(settings.worker_name or "debugworker", settings)
    app = FastAPI(title="dranspose debug worker", lifespan=component_lifespan(worker))
    add_routes(app, worker)
    return app


def create_http_ingester_app(settings: Settings | None = None, ingester_class: str = "HttpSardanaIngester") -> FastAPI:
    """An ingester of the streams in INGESTER_STREAMS fed by the POSTs this app receives
    (``/v1/data_desc``, ``/v1/record_data``, ``/v1/record_end`` for Sardana)."""
    from dranspose.protocols import sardana
    from dranspose.services.ingester import Ingester, StreamSpec
    from dranspose.services.ingesters import resolve
    from dranspose.services.upstreams import HttpUpstream, protect_http_ingester

    settings = settings or Settings()
    streams = settings.ingester_streams
    if len(streams) != 1:
        raise ConfigError(f"an HTTP ingester serves exactly one stream (INGESTER_STREAMS), not {streams}")
    _pattern, cutter = resolve(ingester_class)
    upstreams: list[HttpUpstream] = []

    def make_upstream(ctx: object) -> HttpUpstream:
        upstream = HttpUpstream(ctx, None, sardana.message_from_request)  # type: ignore[arg-type]
        upstreams.append(upstream)
        return upstream

    spec = StreamSpec(streams[0], "", "HTTP", cutter, make_upstream=make_upstream)
    ingester = Ingester(settings.ingester_name or f"{streams[0]}-ingester", settings, [spec])
    app = FastAPI(title="dranspose HTTP ingester", lifespan=component_lifespan(ingester))
    protect_http_ingester(app)

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> JSONResponse:
        if not upstreams:
            return JSONResponse({"detail": "ingester not started"}, status_code=503)
        return upstreams[0].handle("/" + path, await request.body())

    return app
