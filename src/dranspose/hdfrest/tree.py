"""The HDF5 view of a ``publish`` dict: groups, links, datasets, attributes.

Conventions (COMPAT.md §2): a dict is a group; ``"<key>_attrs"`` (a dict) next to ``<key>``
holds the attributes of ``<key>``; ``"_attrs"`` holds the attributes of the group it is in
(the root's for the top level); keys ending in ``_attrs`` whose value is a dict are never
links. Keys that are not ``str``, contain ``/`` or are ``.``, and values that cannot be
represented (see :mod:`h5types`) are left out. Key order is preserved.

Every function here reads ``publish`` and must be called while the source's lock is held;
nothing here copies array data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

from dranspose.hdfrest.errors import NotFound
from dranspose.hdfrest.h5types import DatasetView, dataset_view
from dranspose.hdfrest.ids import ROOT_ID, Kind, object_id

logger = logging.getLogger(__name__)

ATTRS_SUFFIX = "_attrs"


@dataclass(frozen=True)
class Node:
    """An object found in ``publish``: a group (``value`` is the dict) or a dataset."""

    kind: Kind
    path: tuple[str, ...]
    value: Any
    parent: Mapping[str, Any] | None
    view: DatasetView | None = None

    @property
    def id(self) -> str:
        return object_id(self.kind, self.path)

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""

    @property
    def collection(self) -> str:
        return "groups" if self.kind == "g" else "datasets"


def _is_attrs_key(key: str, value: Any) -> bool:
    return key.endswith(ATTRS_SUFFIX) and isinstance(value, Mapping)


def _valid_name(key: Any) -> bool:
    return isinstance(key, str) and key not in ("", ".") and "/" not in key


def make_node(path: tuple[str, ...], value: Any, parent: Mapping[str, Any] | None) -> Node | None:
    """Classify ``value`` at ``path``; None if it is not servable."""
    if isinstance(value, Mapping):
        return Node("g", path, value, parent)
    view = dataset_view(value)
    if view is None:
        return None
    return Node("d", path, value, parent, view)


def root_node(publish: Any) -> Node:
    """The root group (an empty group if ``publish`` is not a dict yet)."""
    return Node("g", (), publish if isinstance(publish, Mapping) else {}, None)


def children(group: Node) -> Iterator[Node]:
    """The links of a group, in key order, leaving out attributes and unservable values."""
    items = list(group.value.items())  # snapshot: the dict may change between requests
    for key, value in items:
        if not _valid_name(key) or _is_attrs_key(key, value):
            continue
        node = make_node((*group.path, key), value, group.value)
        if node is None:
            logger.debug("left out of the links: %s (%s)", "/".join((*group.path, key)),
                         type(value).__name__)
            continue
        yield node


def child(group: Node, name: str) -> Node:
    """The link ``name`` of a group, or :class:`NotFound`."""
    value = group.value.get(name, _MISSING) if _valid_name(name) else _MISSING
    if value is _MISSING or _is_attrs_key(name, value):
        raise NotFound(f"no link {name!r} in group /{'/'.join(group.path)}")
    node = make_node((*group.path, name), value, group.value)
    if node is None:
        raise NotFound(f"{name!r} in group /{'/'.join(group.path)} is not servable")
    return node


_MISSING = object()


def attribute_dict(node: Node) -> dict[str, Any]:
    """The raw attribute dict of a node (merged; not copied values): for groups their own
    ``_attrs``, then the sibling ``<name>_attrs`` (which wins)."""
    out: dict[str, Any] = {}
    if node.kind == "g":
        own = node.value.get("_attrs")
        if isinstance(own, Mapping):
            out.update(own)
    if node.parent is not None and node.path:
        sib = node.parent.get(node.name + ATTRS_SUFFIX)
        if isinstance(sib, Mapping):
            out.update(sib)
    return out


def attributes(node: Node) -> Iterator[tuple[str, DatasetView]]:
    """Servable attributes of a node, in key order."""
    for key, value in list(attribute_dict(node).items()):
        if not isinstance(key, str) or isinstance(value, Mapping):
            continue
        view = dataset_view(value)
        if view is not None:
            yield key, view


def attribute(node: Node, name: str) -> DatasetView:
    """One attribute of a node, or :class:`NotFound`."""
    value = attribute_dict(node).get(name, _MISSING)
    view = None if value is _MISSING or isinstance(value, Mapping) else dataset_view(value)
    if view is None:
        raise NotFound(f"no attribute {name!r} on /{'/'.join(node.path)}")
    return view


def walk(publish: Any, max_depth: int = 64) -> Iterator[Node]:
    """Every servable node below the root, depth first (bounded depth: no cycles)."""
    stack = [root_node(publish)]
    while stack:
        group = stack.pop()
        for node in children(group):
            yield node
            if node.kind == "g" and len(node.path) < max_depth:
                stack.append(node)


class IdIndex:
    """Maps ids back to paths. Filled as links are listed; on a miss (e.g. a client that kept
    ids across a server restart) the tree is walked once to find the id.

    Thread-safe: entries are only added; a stale entry is detected by re-deriving the id.
    """

    def __init__(self, max_walk: int = 1_000_000) -> None:
        self._paths: dict[str, tuple[str, ...]] = {ROOT_ID: ()}
        self._lock = threading.Lock()
        self._max_walk = max_walk

    def remember(self, node: Node) -> None:
        self._paths[node.id] = node.path

    def resolve(self, publish: Any, obj_id: str) -> Node:
        """The node whose id is ``obj_id`` in the current ``publish``, or :class:`NotFound`."""
        path = self._paths.get(obj_id)
        if path is not None:
            node = self._lookup(publish, path)
            if node is not None and node.id == obj_id:
                return node
        node = self._walk(publish, obj_id)
        if node is None:
            raise NotFound(f"object {obj_id} not found")
        return node

    def _lookup(self, publish: Any, path: tuple[str, ...]) -> Node | None:
        node = root_node(publish)
        for name in path:
            if node.kind != "g":
                return None
            try:
                node = child(node, name)
            except NotFound:
                return None
        return node

    def _walk(self, publish: Any, obj_id: str) -> Node | None:
        for seen, node in enumerate(walk(publish)):
            if seen >= self._max_walk:
                break
            with self._lock:
                self._paths[node.id] = node.path
            if node.id == obj_id:
                return node
        return None
