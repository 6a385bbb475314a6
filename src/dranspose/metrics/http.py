"""Request counts and durations of an HTTP app, as a pure ASGI middleware (no per-request
allocation beyond the label lookup). Routes are grouped by their first path segment into a
fixed set, so hostile paths cannot grow the label set."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

#: first path segment -> route label; anything else is "other"
HDFREST_SEGMENTS = {"", "about", "info", "groups", "datasets", "datatypes", "acls"}
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
KNOWN_SEGMENTS = {"viewer", "feedback", "api", "metrics", "healthz", "docs", "openapi.json"}


def route_label(path: str) -> str:
    """``/datasets/d-.../value`` -> ``hdfrest``, ``/viewer/api/poll`` -> ``viewer`` ..."""
    seg = path.lstrip("/").split("/", 1)[0]
    if seg in HDFREST_SEGMENTS:
        return "hdfrest"
    return seg if seg in KNOWN_SEGMENTS else "other"


class HttpMetrics:
    """``dranspose_http_requests_total{route,method,code}`` and
    ``dranspose_http_request_duration_seconds{route}`` in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("dranspose_http_requests", "HTTP requests answered, by route group, method and status code",
                                ["route", "method", "code"], registry=registry)
        self.duration = Histogram("dranspose_http_request_duration_seconds", "Time to answer an HTTP request, by route group",
                                  ["route"], registry=registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))

    def install(self, app: Any) -> None:
        """Count every HTTP request of a Starlette/FastAPI ``app`` (added as middleware)."""
        app.add_middleware(MetricsMiddleware, metrics=self)


class MetricsMiddleware:
    """Pure ASGI middleware recording into :class:`HttpMetrics`."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        route = route_label(scope.get("path", ""))
        method = scope.get("method", "GET")
        method = method if method in METHODS else "other"
        code = ["500"]

        async def send_wrapper(message: Any) -> None:
            if message.get("type") == "http.response.start":
                code[0] = str(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(route, method, code[0]).inc()
            self.metrics.duration.labels(route).observe(time.perf_counter() - start)
