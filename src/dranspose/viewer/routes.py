"""HTTP routes of the live viewer, mounted at ``/viewer`` by the reducer and by replay.

- ``GET /viewer``: the page (static HTML + JS from this package; no CDN).
- ``GET /viewer/static/{name}``: the page's script and style, and ``plotly.min.js`` served from
  the installed ``plotly`` Python package (gzip-compressed once when the client accepts it).
- ``GET /viewer/api/poll?tree=ETAG&path=P&etag=E&path=...``: what changed since the client's
  etags: the tree (null when unchanged) and, per requested dataset, its plot payload or
  ``{"unchanged": true}``. Unknown paths get ``{"error": ...}`` (they may appear later).

All reads go through the same ``PublishSource`` as HDF REST (``publish_rlock`` held while
copying); decimation and encoding run after the lock is released.
"""

from __future__ import annotations

import gzip
import importlib.resources
import logging
import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dranspose.hdfrest.errors import HdfRestError
from dranspose.hdfrest.routes import PublishSource
from dranspose.viewer import data

log = logging.getLogger(__name__)

MAX_PATHS = 16  # datasets per poll
STATIC = {"viewer.js": "text/javascript", "viewer.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store"}


def plotly_js_path() -> Path:
    """``plotly.min.js`` of the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found in the plotly package at {path}")
    return path


@lru_cache(maxsize=4)
def _static_bytes(name: str, compressed: bool) -> bytes:
    if name == "plotly.min.js":
        raw = plotly_js_path().read_bytes()
    else:
        raw = importlib.resources.files("dranspose.viewer").joinpath("static", name).read_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compressed else raw


_static_lock = threading.Lock()


def _static(name: str, media: str, request: Request) -> Response:
    compressed = "gzip" in (request.headers.get("accept-encoding") or "")
    with _static_lock:  # compress once, not once per concurrent first request
        body = _static_bytes(name, compressed)
    headers = {"Cache-Control": "max-age=3600"}
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media, headers=headers)


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/Infinity floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
    (browsers' ``JSON.parse`` refuses the bare tokens)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("NaN" if math.isnan(obj) else "Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def build_router(source: Any) -> APIRouter:
    """The viewer routes over ``source`` (see :class:`dranspose.hdfrest.routes.PublishSource`)."""
    src = PublishSource(source)
    router = APIRouter()

    @router.get("/viewer", include_in_schema=False)
    def page(request: Request) -> Response:
        """The page; its links are relative, so it also works behind a path prefix."""
        return Response(_static_bytes("viewer.html", False), media_type="text/html", headers=NO_STORE)

    @router.get("/viewer/", include_in_schema=False)
    def page_slash(request: Request) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"../viewer{query}", status_code=307)

    @router.get("/viewer/static/{name}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        if name == "plotly.min.js":
            return _static(name, "text/javascript", request)
        if name not in STATIC:
            return JSONResponse({"detail": f"no file {name!r}"}, status_code=404)
        return _static(name, STATIC[name], request)

    def poll_sync(tree_etag: str | None, paths: list[str], etags: list[str], frame: int | None) -> dict[str, Any]:
        copies: dict[str, Any] = {}
        with src.locked() as publish:
            doc = data.tree(publish)
            for path in paths:
                try:
                    copies[path] = data.copy_for_plot(publish, path, frame)
                except HdfRestError as exc:
                    copies[path] = {"error": str(exc)}
        etag = data.tree_etag(doc)
        out: dict[str, Any] = {"tree_etag": etag, "tree": None if etag == tree_etag else doc, "datasets": {}}
        known = dict(zip(paths, etags))
        for path, copied in copies.items():
            if isinstance(copied, dict):
                out["datasets"][path] = copied
                continue
            out["datasets"][path] = data.plot_payload(copied, known.get(path))
        return strict_json(out)  # type: ignore[no-any-return]

    @router.get("/viewer/api/poll", include_in_schema=False)
    async def poll(request: Request) -> Response:
        q = request.query_params
        paths = q.getlist("path")[:MAX_PATHS]
        etags = q.getlist("etag")
        frame_text = q.get("frame")
        frame = int(frame_text) if frame_text and frame_text.lstrip("-").isdigit() else None
        try:
            body = await run_in_threadpool(poll_sync, q.get("tree"), paths, etags, frame)
        except Exception as exc:  # noqa: BLE001 - a value changing shape under us: the next poll retries
            log.warning("viewer poll failed: %r", exc)
            return JSONResponse({"detail": f"cannot read the results now: {exc!r}"}, status_code=503, headers=NO_STORE)
        return JSONResponse(body, headers=NO_STORE)

    return router
