"""HTTP routes of the read-only HDF REST server over a ``publish`` source.

Thin handlers: each takes the source's lock once, resolves the object, builds the document or
copies the selected values, releases the lock, then encodes. Write methods on these paths
get 405 from the router (path matches, method does not). Every refusal is a 4xx; an
unexpected failure while serving a value is logged and answered with 400, never 5xx (h5pyd
retries 5xx with back-off for minutes). Values are compressed only when it pays (see
:func:`encoding.maybe_gzip`: never for loopback clients). CORS headers on every response; OPTIONS preflights
are answered here, so mounting does not need an app-wide middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Coroutine, Iterator

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from dranspose.hdfrest import documents, values
from dranspose.hdfrest.encoding import (
    BINARY_MEDIA,
    JSON_MEDIA,
    dumps,
    dumps_value,
    maybe_gzip,
    wants_binary,
)
from dranspose.hdfrest.errors import HdfRestError, NotFound
from dranspose.hdfrest.ids import COLLECTIONS, kind_of
from dranspose.hdfrest.selection import check_size, parse_post_body, parse_select
from dranspose.hdfrest.tree import IdIndex, Node, attribute, attributes, child, walk

logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Type, Content-Length",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Max-Age": "600",
}


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(dumps(doc), status_code=status, media_type=JSON_MEDIA)


def error_response(status: int, message: str) -> Response:
    return json_response({"status": status, "message": message}, status=status)


class HdfRoute(APIRoute):
    """Route class: CORS on every response, OPTIONS preflight, errors mapped to 4xx."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            if request.method == "OPTIONS":
                return Response(status_code=204, headers=PREFLIGHT_HEADERS)
            try:
                response = await handler(request)
            except HdfRestError as exc:
                response = error_response(exc.status, str(exc))
            except StarletteHTTPException as exc:
                status = exc.status_code if exc.status_code < 500 else 400
                response = error_response(status, str(exc.detail))
            except RequestValidationError as exc:
                response = error_response(422, str(exc.errors()))
            except Exception as exc:  # never 5xx: h5pyd would retry for minutes
                logger.exception("HDF REST request %s %s failed", request.method, request.url.path)
                response = error_response(400, f"cannot serve this request: {exc!r}")
            response.headers.update(CORS_HEADERS)
            return response

        return wrapped


class PublishSource:
    """Access to the ``publish`` dict of a source object (or a plain dict).

    ``source.publish`` is read on every request (the reducer may replace it wholesale), inside
    ``source.publish_rlock`` when the source has one.
    """

    def __init__(self, source: Any) -> None:
        self._source = source

    @contextmanager
    def locked(self) -> Iterator[Any]:
        src = self._source
        if isinstance(src, Mapping):
            yield src
            return
        lock = getattr(src, "publish_rlock", None)
        if lock is None:
            yield getattr(src, "publish", None)
            return
        with lock:
            yield getattr(src, "publish", None)


def _flag(request: Request, *names: str) -> bool:
    for name in names:
        val = request.query_params.get(name)
        if val is not None:
            return val.strip().lower() in ("1", "t", "true", "yes", "y")
    return False


def _domain(request: Request) -> str:
    return request.query_params.get("domain") or "/"


def build_router(source: Any) -> APIRouter:
    """All HDF REST routes over ``source`` (an object with ``publish`` or a dict)."""
    src = PublishSource(source)
    index = IdIndex()
    router = APIRouter(route_class=HdfRoute)

    def resolve(publish: Any, obj_id: str, collection: str | None = None) -> Node:
        kind = kind_of(obj_id)
        if kind is None:
            raise NotFound(f"malformed object id {obj_id!r}")
        if collection is not None and COLLECTIONS.get(collection) != kind:
            raise NotFound(f"{obj_id} is not in /{collection}")
        node = index.resolve(publish, obj_id)
        if node.kind != kind:
            raise NotFound(f"object {obj_id} not found")
        return node

    methods = ["GET", "OPTIONS"]

    @router.api_route("/about", methods=methods)
    @router.api_route("/info", methods=methods)
    def get_about() -> Response:
        return json_response(documents.about())

    @router.api_route("/", methods=methods)
    def get_domain(request: Request) -> Response:
        return json_response(documents.domain(_domain(request)))

    @router.api_route("/groups", methods=methods)
    @router.api_route("/datasets", methods=methods)
    @router.api_route("/datatypes", methods=methods)
    def get_collection(request: Request) -> Response:
        name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        with src.locked() as publish:
            ids = [n.id for n in walk(publish) if n.collection == name]
        return json_response({name: ids})

    @router.api_route("/groups/{obj_id}", methods=methods)
    def get_group(obj_id: str, request: Request) -> Response:
        with src.locked() as publish:
            node = resolve(publish, obj_id, "groups")
            doc = documents.group(node, index, _flag(request, "include_links"),
                                  _flag(request, "include_attrs"), _domain(request))
        return json_response(doc)

    @router.api_route("/groups/{obj_id}/links", methods=methods)
    def get_links(obj_id: str, request: Request) -> Response:
        limit = request.query_params.get("Limit")
        marker = request.query_params.get("Marker")
        with src.locked() as publish:
            node = resolve(publish, obj_id, "groups")
            links = documents.links_list(node, index)
        if marker:
            names = [link["title"] for link in links]
            links = links[names.index(marker) + 1:] if marker in names else []
        if limit and limit.isdigit():
            links = links[: int(limit)]
        return json_response({"links": links, "hrefs": []})

    @router.api_route("/groups/{obj_id}/links/{name:path}", methods=methods)
    def get_link(obj_id: str, name: str) -> Response:
        with src.locked() as publish:
            node = child(resolve(publish, obj_id, "groups"), name)
            index.remember(node)
            doc = documents.link(node)
        return json_response({"link": doc, "hrefs": []})

    def attribute_routes(collection: str) -> None:
        def get_attributes(obj_id: str, request: Request) -> Response:
            with_values = _flag(request, "IncludeData", "include_data")
            with src.locked() as publish:
                node = resolve(publish, obj_id, collection)
                docs = [documents.attribute(n, v, with_values, position=i)
                        for i, (n, v) in enumerate(attributes(node))]
            return json_response({"attributes": docs, "hrefs": []})

        def get_attribute(obj_id: str, name: str) -> Response:
            with src.locked() as publish:
                node = resolve(publish, obj_id, collection)
                doc = documents.attribute(name, attribute(node, name))
            return json_response(doc)

        router.add_api_route(f"/{collection}/{{obj_id}}/attributes", get_attributes,
                             methods=methods)
        router.add_api_route(f"/{collection}/{{obj_id}}/attributes/{{name:path}}",
                             get_attribute, methods=methods)

    for coll in ("groups", "datasets", "datatypes"):
        attribute_routes(coll)

    @router.api_route("/datasets/{obj_id}", methods=methods)
    def get_dataset(obj_id: str, request: Request) -> Response:
        with src.locked() as publish:
            node = resolve(publish, obj_id, "datasets")
            doc = documents.dataset(node, _flag(request, "include_attrs"), _domain(request))
        return json_response(doc)

    @router.api_route("/datasets/{obj_id}/shape", methods=methods)
    def get_shape(obj_id: str) -> Response:
        with src.locked() as publish:
            node = resolve(publish, obj_id, "datasets")
            assert node.view is not None
            doc = {"shape": node.view.shape_json, "created": documents.START_TIME,
                   "lastModified": documents.START_TIME}
        return json_response(doc)

    @router.api_route("/datasets/{obj_id}/type", methods=methods)
    def get_type(obj_id: str) -> Response:
        with src.locked() as publish:
            node = resolve(publish, obj_id, "datasets")
            assert node.view is not None
            doc = {"type": node.view.type_json}
        return json_response(doc)

    def read_value(obj_id: str, request: Request,
                   selector: Callable[[tuple[int, ...]], Any]) -> Response:
        with src.locked() as publish:
            node = resolve(publish, obj_id, "datasets")
            view = node.view
            assert view is not None
            sel = selector(view.shape)
            binary = wants_binary(request.headers.get("accept")) and not view.vlen
            check_size(sel, view.wire_dtype.itemsize, binary)  # before anything is allocated
            data = values.read(view, sel)
        if binary:
            body, media = data.tobytes(), BINARY_MEDIA
        else:
            body, media = dumps_value(data), JSON_MEDIA
        del data
        client = request.client.host if request.client else None
        body, headers = maybe_gzip(body, request.headers.get("accept-encoding"), client)
        return Response(body, media_type=media, headers=headers)

    @router.api_route("/datasets/{obj_id}/value", methods=["GET", "OPTIONS"])
    def get_value(obj_id: str, request: Request) -> Response:
        select = request.query_params.get("select")
        return read_value(obj_id, request, lambda shape: parse_select(select, shape))

    @router.api_route("/datasets/{obj_id}/value", methods=["POST"])
    async def post_value(obj_id: str, request: Request) -> Response:
        body = await request.body()
        ctype = request.headers.get("content-type")
        return await run_in_threadpool(
            read_value, obj_id, request, lambda shape: parse_post_body(body, ctype, shape))

    @router.api_route("/acls/{user}", methods=methods)
    def get_acl(user: str) -> Response:
        return json_response({"acl": documents.acl(user), "hrefs": []})

    @router.api_route("/acls", methods=methods)
    def get_acls() -> Response:
        return json_response({"acls": [documents.acl("default")], "hrefs": []})

    return router
