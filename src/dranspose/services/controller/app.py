"""The controller's REST API (COMPAT §4), built by ``create_app(settings)``.

Routers are thin: they validate the request, call the scheduler, and map domain errors to
HTTP in one place (:class:`MappingError`/:class:`ConfigError` -> 400).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

import dranspose
from dranspose.config import Settings
from dranspose.core import triggermap
from dranspose.core.triggermap import CompiledMap, compile_mapping, compile_request
from dranspose.dumps.paths import check_prefix, dump_root
from dranspose.errors import ConfigError, DransposeError, MappingError
from dranspose.parameters import parameter_list_adapter
from dranspose.services import gc_pause
from dranspose.services import logs as logstream
from dranspose.services.access import protect, redact
from dranspose.services.controller.scheduler import Scheduler
from dranspose.services.loop_time import CoreTime
from dranspose.services.controller.status_page import STATUS_PAGE
from dranspose.transport.control import ParametersChanged, source_json
from dranspose.transport.jsonio import dumps_compact, join_objects
from dranspose.states import ensemble_view

T = TypeVar("T")

log = logging.getLogger(__name__)


def _scheduler(request: Request) -> Scheduler:
    return request.app.state.scheduler  # type: ignore[no-any-return]


async def _body_bytes(request: Request) -> bytes:
    """The request body, refused (MappingError) past ``MAX_MAP_BYTES``."""
    raw = await request.body()
    limit = triggermap.MAX_MAP_BYTES
    if len(raw) > limit:
        raise MappingError(f"the map has {len(raw)} bytes, more than the limit of {limit} (DRANSPOSE_MAX_MAP_BYTES)")
    return raw


def _parse_json(raw: bytes) -> Any:
    """The body's JSON (ConfigError when it is not JSON)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"request body is not valid JSON: {exc}") from None


async def _json_body(request: Request) -> Any:
    return _parse_json(await _body_bytes(request))


def _legacy_map(raw: bytes, all_wrap: bool) -> CompiledMap:
    """A ``/mapping`` body compiled; the body's text kept as its source (``SourceText``)."""
    return compile_mapping(_parse_json(raw), all_wrap, body=raw)


def _sequence(raw: bytes, all_wrap: bool) -> CompiledMap:
    return compile_request(_parse_json(raw), all_wrap)


def _start_body(sched: Scheduler, compile_body: Callable[[bytes, bool], CompiledMap], raw: bytes, all_wrap: bool) -> str:
    """Parse a map body, compile it and start its scan in one step, for :func:`_building`: a
    long map's JSON is a million objects too (parsed with the collector on, a 200,000-event
    map took three times as long), and the collector stays off until the scan's start has
    frozen the new map (``gc_pause.settle``, in the processes of the ``dranspose`` command),
    so it never walks it. Off the event loop, so status requests still answer meanwhile.
    Returns the mapping uuid."""
    return sched.start_mapping(compile_body(raw, all_wrap))


def _start_sardana(sched: Scheduler, info: Any) -> str:
    """The Sardana hook's uniform map over the streams an ingester serves, compiled and
    started in one step like :func:`_start_body`."""
    return sched.start_mapping(compile_mapping(sardana_map(info, sched.served_streams()), True))


_VIRTUAL_WORKER = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": {"type": "string"}}, "constraint": {"type": ["integer", "null"]}},
    "additionalProperties": False,
}
_MAP_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": ["array", "null"], "items": _VIRTUAL_WORKER}},
}
_SEQUENCE_SCHEMA = {
    "type": "object",
    "properties": {"parts": {"type": "object", "additionalProperties": _MAP_SCHEMA}, "sequence": {"type": "array", "items": {"type": "string"}}},
    "required": ["parts", "sequence"],
}


def _json_request(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body of a route that reads its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _building(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` (compiling a map, starting its scan: many objects made, all kept) without
    automatic garbage collection meanwhile (see :func:`gc_pause.paused`)."""
    with gc_pause.paused():
        return fn(*args)


def mapping_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["scan"])

    @r.post(
        "/mapping",
        summary="Set a trigger map {stream: [entries]} (legacy); returns the mapping uuid",
        openapi_extra=_json_request(_MAP_SCHEMA),
    )
    async def set_mapping(request: Request, all_wrap: bool = True) -> str:
        raw = await _body_bytes(request)
        return await asyncio.to_thread(_building, _start_body, _scheduler(request), _legacy_map, raw, all_wrap)

    @r.post(
        "/sequence", summary="Set a sequence {parts, sequence}; returns the mapping uuid", openapi_extra=_json_request(_SEQUENCE_SCHEMA)
    )
    async def set_sequence(request: Request, all_wrap: bool = True) -> str:
        raw = await _body_bytes(request)
        return await asyncio.to_thread(_building, _start_body, _scheduler(request), _sequence, raw, all_wrap)

    @r.get("/sequence", summary="The current sequence as it was set")
    def get_sequence(request: Request) -> Any:
        sched = _scheduler(request)
        with sched.lock:
            if sched.scan is None:
                return None
            return Response(source_json(sched.scan.cmap.source), media_type="application/json")

    @r.get("/mapping", summary="The current mapping uuid and sequence")
    def get_mapping(request: Request) -> Any:
        sched = _scheduler(request)
        with sched.lock:
            if sched.scan is None:
                return None
            # {"uuid": ..., "parts": ..., "sequence": ...}: the source document with the uuid first
            text = join_objects(dumps_compact({"uuid": sched.mapping_uuid}), source_json(sched.scan.cmap.source))
            return Response(text, media_type="application/json")

    @r.post("/sardana_hook", summary="Start a scan of nb_points events on the given streams (old Sardana hook)")
    async def sardana_hook(request: Request) -> str:
        """Body ``{"streams": [...], "scan": {"nb_points": N, ...}}``: a uniform map (event i to
        constraint i) over the requested streams that an ingester serves, wrapped."""
        info = await _json_body(request)
        return await asyncio.to_thread(_building, _start_sardana, _scheduler(request), info)

    @r.get("/progress", summary="Progress of the current scan; finished after every finish() ran")
    def progress(request: Request) -> dict[str, Any]:
        return _scheduler(request).progress()

    @r.post("/stop", summary="Stop the current scan: no further events are assigned")
    def stop(request: Request) -> dict[str, Any]:
        _scheduler(request).stop_scan()
        return _scheduler(request).progress()

    return r


MAX_SARDANA_POINTS = 10_000_000


def sardana_map(info: Any, served: set[str]) -> dict[str, list[Any]]:
    """The trigger map of a Sardana hook request (ConfigError explains what is wrong)."""
    if not isinstance(info, dict) or not isinstance(info.get("scan"), dict):
        raise ConfigError("sardana_hook: the body needs a 'scan' object with 'nb_points'")
    points = info["scan"].get("nb_points")
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_SARDANA_POINTS:
        raise ConfigError(f"sardana_hook: scan.nb_points must be an integer in 1..{MAX_SARDANA_POINTS}, got {points!r}")
    streams = info.get("streams")
    if not isinstance(streams, list) or not all(isinstance(x, str) for x in streams):
        raise ConfigError("sardana_hook: 'streams' (a list of stream names) is required")
    use = [x for x in dict.fromkeys(streams) if x in served]
    if not use:
        raise ConfigError(f"sardana_hook: none of the streams {streams} is served; served: {sorted(served)}")
    return {x: [[{"tags": ["generic"], "constraint": i}] for i in range(points)] for x in use}


def status_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["status"])

    @r.get("/config", summary="The advertised state of every component (validates as the old EnsembleState)")
    def config(request: Request) -> dict[str, Any]:
        sched = _scheduler(request)
        with sched.lock:
            comps = {k: dict(v) for k, v in sched.components.items()}
        raw, digest = sched.parameter_values()
        view = ensemble_view(
            comps["ingester"].values(),
            comps["worker"].values(),
            next(iter(comps["reducer"].values()), None),
            controller_version=dranspose.__version__,
            parameters=raw,
            parameters_hash=digest,
        )
        view["controller"] = {"version": dranspose.__version__, "redis_url": sched.settings.redis_url}
        return redact(view)  # type: ignore[no-any-return]  # no passwords (Redis URL, HSDS, ...) for anyone to read

    @r.get("/status", summary="Components, progress, error counts, failed events")
    def status(request: Request) -> dict[str, Any]:
        sched = _scheduler(request)
        sched.refresh_components()
        progress = sched.progress()
        with sched.lock:
            comps = {k: dict(v) for k, v in sched.components.items()}
            lost = {k: list(v) for k, v in sched.lost.items()}
            started, finished = sched.scan_started, sched.scan_finished
            faults = list(sched.liveness.events)
            stuck = dict(sched.liveness.stuck)
        errors = {
            f"{kind}:{name}": st.get("errors", {}) for kind, group in comps.items() for name, st in group.items() if st.get("errors")
        }
        return {
            "mapping_uuid": sched.mapping_uuid,
            "progress": progress,
            "finished": progress.get("finished", False),
            "failed_events": progress.get("failed_events", 0),
            "lost_by_worker": lost,
            "faults": faults,
            "stuck": stuck,
            "errors": errors,
            "error_count": sum(sum(e.values()) for e in errors.values()),
            "components": {kind: sorted(group) for kind, group in comps.items()},
            "ingesters": {n: st.get("stream_stats", {}) for n, st in comps["ingester"].items()},
            "workers": {
                n: {
                    "processed": st.get("processed", 0),
                    "tags": st.get("tags"),
                    "assignment_waits": st.get("assignment_waits", 0),  # events whose frames came before their assignment
                    "assignment_wait_s": st.get("assignment_wait_s", 0.0),  # ... and the seconds they waited for it
                }
                for n, st in comps["worker"].items()
            },
            "reducer": {n: {"processed": st.get("total_processed", 0), "http": st.get("http")} for n, st in comps["reducer"].items()},
            # each component's data loop: seconds on a core and waiting for one (oversubscribed cores)
            "data_loops": {
                f"{kind}:{name}": spent.as_state()
                for kind, group in comps.items()
                for name, st in group.items()
                if (spent := CoreTime.from_state(st.get("data_loop"))) is not None
            },
            "scan_started": started,
            "scan_finished": finished,
            "load": sched.load([1, 10]),
        }

    @r.get("/load", summary="Events per second per worker over the given intervals (s)")
    def load(request: Request, intervals: list[int] = Query(default=[1, 10])) -> dict[str, Any]:
        return _scheduler(request).load(intervals)

    @r.get("/logs", summary="Recent log records of every component (incl. the payload's loggers), oldest first")
    def logs(request: Request, count: int = 2000, level: str = "INFO") -> list[dict[str, Any]]:
        """``level`` is a minimum level (name or number), as in the old API."""
        sched = _scheduler(request)
        try:
            minimum = logstream.level_number(level)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        entries = sched.redis.xrevrange(sched.keys.logs(), count=max(1, min(count, logstream.LOG_STREAM_MAXLEN)))
        out = [logstream.read_entry(fields) for _id, fields in reversed(entries)]
        return [e for e in out if logstream.entry_level(e) >= minimum]

    @r.get("/log_stream", summary="Every new log record as newline-delimited JSON (one object per line)")
    async def log_stream(request: Request, level: str = "DEBUG") -> StreamingResponse:
        sched = _scheduler(request)
        try:
            minimum = logstream.level_number(level)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

        stopping: threading.Event = request.app.state.stopping

        async def lines() -> AsyncIterator[bytes]:
            """Until the client goes or the server stops (within a read's second)."""
            last = "$"
            while not stopping.is_set() and not await request.is_disconnected():
                replies = await asyncio.to_thread(sched.redis.xread, {sched.keys.logs(): last}, 100, 1000)
                for _key, entries in replies or []:
                    for entry_id, fields in entries:
                        last = entry_id
                        entry = logstream.read_entry(fields)
                        if logstream.entry_level(entry) >= minimum:
                            yield (json.dumps(entry) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return r


def parameter_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["parameters"])

    def descriptions(sched: Scheduler) -> dict[str, Any]:
        with sched.lock:
            states = [*(st for kind in ("worker", "reducer", "ingester") for st in sched.components[kind].values())]
        out: dict[str, Any] = {}
        for st in states:
            for d in parameter_list_adapter.validate_python(st.get("parameters", [])):
                out.setdefault(d.name, d)
        return out

    @r.get("/parameters", summary="Descriptions of every declared parameter")
    def list_parameters(request: Request) -> list[dict[str, Any]]:
        return [d.model_dump(mode="json") for d in descriptions(_scheduler(request)).values()]

    @r.post(
        "/parameter/{name}",
        summary="Set a parameter (raw bytes body); applies to later events; returns the new parameters hash",
        openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def set_parameter(name: str, request: Request) -> str:
        sched = _scheduler(request)
        raw = await request.body()
        if name == "dump_prefix":  # a path from the network: confined under the dump root
            check_prefix(raw.decode(errors="replace"), dump_root(sched.settings.dump_root))
        await asyncio.to_thread(sched.redis.hset, sched.keys.parameters(), name, raw)
        await asyncio.to_thread(sched.announce, ParametersChanged(name))
        _raw, digest = await asyncio.to_thread(sched.parameter_values)
        return digest

    @r.get("/parameter/{name}", summary="A parameter's raw bytes (the default when only declared)")
    def get_parameter(name: str, request: Request) -> Response:
        sched = _scheduler(request)
        raw = sched.redis.hget(sched.keys.parameters(), name)
        if raw is None:
            desc = descriptions(sched).get(name)
            if desc is None:
                return JSONResponse({"detail": f"no parameter {name!r}"}, status_code=404)
            raw = desc.to_bytes(desc.default)
        return Response(raw, media_type="application/octet-stream")

    return r


def create_app(settings: Settings | None = None) -> FastAPI:
    """A controller app; the scheduler thread runs for the app's lifespan."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = Scheduler(settings)
        app.state.scheduler = scheduler
        handler = logstream.install(scheduler.redis, scheduler.keys.logs(), "controller", settings.log_forward_level)
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            logstream.uninstall(handler)

    app = FastAPI(title="dranspose controller", version=dranspose.__version__, lifespan=lifespan)
    app.state.stopping = threading.Event()  # set by the server at a signal: endless responses end (log_stream)
    # token, Host, body size, JSON type; added before CORS so that its refusals carry CORS headers
    protect(app, json_routes=[r"^/api/v1/(mapping|sequence|sardana_hook)$"])
    if settings.cors_origins:  # browsers on other origins may call the API (as before; "*" by default)
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"], allow_headers=["*"])

    @app.exception_handler(DransposeError)
    async def domain_error(request: Request, exc: DransposeError) -> JSONResponse:
        status = 400 if isinstance(exc, ValueError) else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    app.include_router(mapping_router())
    app.include_router(status_router())
    app.include_router(parameter_router())

    from dranspose.services import observe

    observe.install_controller(app)  # /metrics, /healthz, /api/v1/dashboard

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> str:
        return STATUS_PAGE

    return app
