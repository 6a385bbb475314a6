"""Prometheus metrics (``/metrics``, text exposition format) of the controller and the reducer.

Each app owns a private :class:`prometheus_client.CollectorRegistry` (several components may
live in one process, e.g. in tests). Names follow the Prometheus conventions: ``dranspose_``
prefix, base units in the name (``_seconds``), ``_total`` for counters.

Public API: :func:`mount`, :class:`ControllerCollector` (in :mod:`.controller`),
:class:`ReducerMetrics` (in :mod:`.reducer`), :class:`HttpMetrics` (in :mod:`.http`).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def mount(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``GET /metrics``."""

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["mount"]
