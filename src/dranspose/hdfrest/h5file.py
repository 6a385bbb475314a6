"""Write ``publish`` (or a subtree) to a local HDF5 file, as the HDF REST server shows it.

Same conventions and type mapping as the server (groups, ``_attrs`` attributes, values left
out when unservable, key order kept through link creation order). Arrays of at least
``min_compress_bytes`` are chunked and compressed with bitshuffle/LZ4 through ``hdf5plugin``;
the file is plain HDF5: h5py reads it once the bitshuffle filter is available (``import
hdf5plugin``, or ``HDF5_PLUGIN_PATH=hdf5plugin.PLUGIN_PATH``).

Consistency: the tree is snapshotted (values copied) under the source's ``publish_rlock``,
then written without holding it, so the reducer is blocked only for the copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dranspose.hdfrest import tree, values
from dranspose.hdfrest.errors import NotFound
from dranspose.hdfrest.routes import PublishSource

logger = logging.getLogger(__name__)


@dataclass
class _Snap:
    """A private copy of one group: attributes and children in key order."""

    attrs: list[tuple[str, np.ndarray]] = field(default_factory=list)
    #: (name, group snapshot, None) or (name, array, its attributes)
    children: list[tuple[str, Any, list[tuple[str, np.ndarray]] | None]] = field(
        default_factory=list)


def _snapshot(node: tree.Node) -> _Snap:
    snap = _Snap(attrs=[(name, values.read(view)) for name, view in tree.attributes(node)])
    for kid in tree.children(node):
        if kid.kind == "g":
            snap.children.append((kid.name, _snapshot(kid), None))
        else:
            assert kid.view is not None
            kid_attrs = [(n, values.read(v)) for n, v in tree.attributes(kid)]
            snap.children.append((kid.name, values.read(kid.view), kid_attrs))
    return snap


def snapshot(source: Any, subtree: Sequence[str] = ()) -> _Snap:
    """Copy the (sub)tree of ``source`` under its lock. Raises :class:`NotFound` if
    ``subtree`` is not a group."""
    with PublishSource(source).locked() as publish:
        node = tree.root_node(publish)
        for name in subtree:
            node = tree.child(node, name)
        if node.kind != "g":
            raise NotFound(f"/{'/'.join(subtree)} is not a group")
        return _snapshot(node)


def _h5_value(arr: np.ndarray) -> Any:
    """Adapt a private array for h5py: object arrays of str become h5py vlen strings."""
    import h5py

    if arr.dtype.kind == "O":
        return arr.astype(h5py.string_dtype("utf-8")) if arr.ndim else str(arr[()])
    return arr


def _write_group(group: Any, snap: _Snap, compression: Any, min_bytes: int) -> None:
    for name, value in snap.attrs:
        group.attrs[name] = _h5_value(value)
    for name, child, child_attrs in snap.children:
        if isinstance(child, _Snap):
            _write_group(group.create_group(name, track_order=True), child, compression,
                         min_bytes)
            continue
        data = _h5_value(child)
        big = (isinstance(data, np.ndarray) and data.ndim > 0 and data.size > 0
               and data.dtype.kind in "biuf" and data.nbytes >= min_bytes)
        if big and compression is not None:
            ds = group.create_dataset(name, data=data, chunks=True, **compression)
        else:
            ds = group.create_dataset(name, data=data)
        for aname, avalue in child_attrs or []:
            ds.attrs[aname] = _h5_value(avalue)


def write_h5(source: Any, path: str | os.PathLike[str], subtree: Sequence[str] = (),
             compression: str | None = "bitshuffle", min_compress_bytes: int = 4096) -> None:
    """Write ``source.publish`` (or a plain dict), or its group at ``subtree``, to ``path``.

    ``compression``: ``"bitshuffle"`` (bitshuffle + LZ4, needs hdf5plugin), ``"gzip"``, or
    None. The file is written to ``path + ".tmp"`` and renamed, so readers never see a
    partial file.
    """
    import h5py

    comp: Mapping[str, Any] | None
    if compression == "bitshuffle":
        import hdf5plugin

        comp = dict(hdf5plugin.Bitshuffle(cname="lz4"))
    elif compression == "gzip":
        comp = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    elif compression is None:
        comp = None
    else:
        raise ValueError(f"unknown compression {compression!r}")
    snap = snapshot(source, subtree)
    tmp = f"{os.fspath(path)}.tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        _write_group(f, snap, comp, min_compress_bytes)
    os.replace(tmp, path)
    logger.info("wrote %s", path)
