"""JSON documents of the HDF REST API (the shapes HSDS returns, as h5pyd and H5Web read them).

All builders run under the publish lock; attribute values are converted to plain Python
objects here (small copies), dataset values never are.
"""

from __future__ import annotations

import time
from typing import Any

from dranspose.hdfrest import tree, values
from dranspose.hdfrest.encoding import jsonable
from dranspose.hdfrest.h5types import DatasetView
from dranspose.hdfrest.ids import ROOT_ID
from dranspose.hdfrest.tree import IdIndex, Node

#: reported as creation time of every object
START_TIME = time.time()

LIMITS = {
    "min_chunk_size": 1024 * 1024,
    "max_chunk_size": 4 * 1024 * 1024,
    "max_request_size": 1024 * 1024 * 1024,
}


def about() -> dict[str, Any]:
    return {
        "state": "READY",
        "name": "dranspose HDF REST",
        "about": "live results of a dranspose reducer over the HDF REST API (read-only)",
        "greeting": "Welcome to dranspose",
        "start_time": int(START_TIME),
        "node_count": 1,
    }


def domain(domain_name: str) -> dict[str, Any]:
    """``GET /``. Never carries ``domain_objs`` (h5pyd would cache them forever)."""
    now = time.time()
    return {
        "root": ROOT_ID,
        "class": "domain",
        "owner": "dranspose",
        "created": START_TIME,
        "lastModified": now,
        "limits": LIMITS,
        "compressors": [],
        "version": "1.0.2",  # the HSDS API level the clients were checked against
        "domain": domain_name,
    }


def value_of_view(view: DatasetView) -> Any:
    """The full value of a (small) attribute as plain JSON-able objects."""
    return jsonable(values.read(view))


def attribute(name: str, view: DatasetView, with_value: bool = True,
              position: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "type": view.type_json,
        "shape": view.shape_json,
        "created": _order_stamp(position),
        "lastModified": _order_stamp(position),
    }
    if with_value:
        doc["value"] = value_of_view(view)
    return doc


def attributes_inline(node: Node) -> dict[str, Any]:
    """``attributes`` as inlined by ``include_attrs``: name -> {type, shape, value}."""
    out = {}
    for pos, (name, view) in enumerate(tree.attributes(node)):
        out[name] = {"type": view.type_json, "shape": view.shape_json,
                     "value": value_of_view(view), "created": _order_stamp(pos)}
    return out


def _order_stamp(position: int) -> float:
    """A creation time that encodes key order (h5pyd sorts tracked links by it)."""
    return START_TIME + position * 1e-3


#: creation properties of every group: links and attributes in creation (= key) order
GROUP_CPL = {"CreateOrder": 1}


def link(node: Node, full: bool = True, position: int = 0) -> dict[str, Any]:
    doc: dict[str, Any] = {"class": "H5L_TYPE_HARD", "id": node.id,
                           "created": _order_stamp(position)}
    if full:
        doc["title"] = node.name
        doc["collection"] = node.collection
    return doc


def links_list(group: Node, index: IdIndex) -> list[dict[str, Any]]:
    out = []
    for pos, node in enumerate(tree.children(group)):
        index.remember(node)
        out.append(link(node, position=pos))
    return out


def group(node: Node, index: IdIndex, include_links: bool, include_attrs: bool,
          domain_name: str) -> dict[str, Any]:
    kids = list(tree.children(node))
    for kid in kids:
        index.remember(kid)
    attrs = attributes_inline(node) if include_attrs else None
    n_attrs = len(attrs) if attrs is not None else sum(1 for _ in tree.attributes(node))
    doc: dict[str, Any] = {
        "id": node.id,
        "root": ROOT_ID,
        "created": START_TIME,
        "lastModified": time.time(),
        "linkCount": len(kids),
        "attributeCount": n_attrs,
        "creationProperties": dict(GROUP_CPL),
        "domain": domain_name,
    }
    if include_links:
        doc["links"] = {k.name: link(k, full=False, position=i) for i, k in enumerate(kids)}
    if attrs is not None:
        doc["attributes"] = attrs
    return doc


def dataset(node: Node, include_attrs: bool, domain_name: str) -> dict[str, Any]:
    view = node.view
    assert view is not None  # datasets always carry a view (guaranteed by tree.make_node)
    attrs = attributes_inline(node) if include_attrs else None
    n_attrs = len(attrs) if attrs is not None else sum(1 for _ in tree.attributes(node))
    doc: dict[str, Any] = {
        "id": node.id,
        "root": ROOT_ID,
        "created": START_TIME,
        "lastModified": time.time(),
        "type": view.type_json,
        "shape": view.shape_json,
        "layout": {"class": "H5D_CONTIGUOUS"},
        "creationProperties": {"layout": {"class": "H5D_CONTIGUOUS"}, **GROUP_CPL},
        "attributeCount": n_attrs,
        "domain": domain_name,
    }
    if attrs is not None:
        doc["attributes"] = attrs
    return doc


def acl(user: str) -> dict[str, Any]:
    return {
        "userName": user,
        "create": False,
        "read": True,
        "update": False,
        "delete": False,
        "readACL": False,
        "updateACL": False,
    }
