"""What the controller and the reducer add to their HTTP apps so people and machines can see the
pipeline: ``/metrics`` (Prometheus), ``/healthz`` (probes), HTTP request metrics, the status
page's ``/api/v1/dashboard`` (controller) and the live viewer at ``/viewer`` (reducer).

One call per app keeps the services' own modules free of this wiring:
:func:`install_controller` and :func:`install_reducer`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from dranspose import metrics
from dranspose.metrics.controller import ControllerCollector
from dranspose.metrics.http import HttpMetrics


class _AppScheduler:
    """The scheduler of a controller app, looked up at scrape time (it exists only inside the
    app's lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        sched = getattr(self.app.state, "scheduler", None)
        if sched is None:
            raise LookupError("the controller's scheduler is not running")
        return getattr(sched, name)


class _LazyCollector(ControllerCollector):
    def collect(self):  # type: ignore[no-untyped-def]
        try:
            yield from super().collect()
        except LookupError:  # before start-up / after shutdown: nothing to report
            return


def install_controller(app: FastAPI) -> None:
    """/metrics (collector over ``app.state.scheduler``), HTTP metrics, /healthz and
    /api/v1/dashboard on a controller app."""
    from dranspose.services.controller.dashboard import dashboard_router

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LazyCollector(_AppScheduler(app)))
    HttpMetrics(registry).install(app)
    metrics.mount(app, registry)
    app.include_router(dashboard_router())

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        """200 while the scheduler thread runs (liveness/readiness probes)."""
        sched = getattr(request.app.state, "scheduler", None)
        thread = getattr(sched, "_thread", None)
        ok = thread is not None and thread.is_alive()
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)


def install_reducer(app: FastAPI, reducer: Any) -> None:
    """/metrics (``reducer.metrics``), HTTP metrics, /healthz and the viewer on a reducer app.

    /healthz is 200 while the data loop turns: 503 once ``reducer.loop_beat`` (stamped by the
    loop) is older than ``reducer.loop_stall`` seconds (user code that never returns) or the
    reducer is stopping."""
    from dranspose import viewer

    metrics.mount(app, reducer.metrics.registry)
    reducer.metrics.http.install(app)
    viewer.mount(app, reducer)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        stalled = time.monotonic() - reducer.loop_beat
        ok = not reducer.stopping.is_set() and stalled < reducer.loop_stall
        return JSONResponse({"ok": ok, "name": reducer.name, "loop_stalled_s": round(stalled, 3)}, status_code=200 if ok else 503)
