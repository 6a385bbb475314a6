"""Mirror ``publish`` (or a subtree) into an HSDS domain through h5pyd, incrementally.

Each sync pass plans under the source's ``publish_rlock`` and writes without it:

- planning walks the tree (same conventions and type mapping as the HDF REST server),
  hashes every dataset (BLAKE2b over its bytes) and copies only what must be sent: a new or
  changed dataset whole; a dataset grown along its first axis whose old rows are unchanged
  only its new rows (HSDS side: resized and appended, not rewritten);
- writing happens through h5pyd in the mirror's own thread and is flushed at the end of
  each pass, so HSDS clients see a consistent state after every pass.

The mirror never blocks the reducer: ``process_result`` only ever waits for the short
planning step (it holds the lock the reducer uses). An unreachable HSDS is logged (once per
outage), counted in :meth:`HSDSMirror.status`, and retried with back-off; after a failure
the next successful pass recreates the domain from scratch (its state is unknown).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dranspose.hdfrest import tree, values
from dranspose.hdfrest.encoding import jsonable
from dranspose.hdfrest.errors import NotFound
from dranspose.hdfrest.routes import PublishSource

logger = logging.getLogger(__name__)

Path = tuple[str, ...]


@dataclass
class _DsState:
    shape: tuple[int, ...]
    dtype: str
    digest: bytes
    resizable: bool
    attrs: str


@dataclass
class _Op:
    """One write: ``kind`` in create_group, delete, write (whole), append, attrs."""

    kind: str
    path: Path
    data: Any = None
    start: int = 0
    attrs: list[tuple[str, Any]] = field(default_factory=list)
    resizable: bool = False


@dataclass
class MirrorStatus:
    syncs: int = 0
    failures: int = 0
    last_sync: float | None = None
    last_error: str | None = None
    datasets_written: int = 0
    rows_appended: int = 0
    bytes_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _digest(arr: np.ndarray) -> bytes:
    if arr.dtype.kind == "O":
        return hashlib.blake2b(json.dumps(arr.tolist()).encode(), digest_size=16).digest()
    return hashlib.blake2b(np.ascontiguousarray(arr).data, digest_size=16).digest()


def _attrs_key(attrs: list[tuple[str, np.ndarray]]) -> str:
    return json.dumps([(n, jsonable(v), v.dtype.str) for n, v in attrs], allow_nan=True)


class HSDSMirror:
    """Keeps an HSDS domain equal to ``source.publish`` (or the group at ``subtree``).

    ``h5pyd_kwargs``: endpoint, username, password, bucket ... for ``h5pyd.File``.
    Thread-safe: :meth:`sync` may be called from any thread (passes are serialised).
    """

    def __init__(self, source: Any, domain: str, subtree: Sequence[str] = (),
                 interval: float = 2.0, max_backoff: float = 30.0,
                 **h5pyd_kwargs: Any) -> None:
        self._source = PublishSource(source)
        self.domain = domain
        self.subtree = tuple(subtree)
        self.interval = interval
        self.max_backoff = max_backoff
        self._kwargs = {"retries": 1, "timeout": 10, **h5pyd_kwargs}
        self._file: Any = None
        self._state: dict[Path, _DsState | None] = {}  # None: a group
        self._group_attrs: dict[Path, str] = {}
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = MirrorStatus()

    @classmethod
    def from_settings(cls, source: Any, settings: Any = None) -> "HSDSMirror | None":
        """Build the mirror from settings, or None if no domain is configured.

        Reads ``hsds_domain``, ``hsds_endpoint``, ``hsds_username``, ``hsds_password``,
        ``hsds_bucket``, ``hsds_subtree`` (``"a/b"``) and ``hsds_interval`` (seconds) from
        ``settings`` (any object; missing or None attributes fall back to the environment:
        ``DRANSPOSE_HSDS_<NAME>``, then h5pyd's ``HS_ENDPOINT``/``HS_USERNAME``/
        ``HS_PASSWORD``/``HS_BUCKET``).
        """
        import os

        def get(name: str, *env: str) -> Any:
            value = getattr(settings, f"hsds_{name}", None)
            if value is None:
                for var in (f"DRANSPOSE_HSDS_{name.upper()}", *env):
                    if os.environ.get(var):
                        return os.environ[var]
            return value

        domain = get("domain")
        if not domain:
            return None
        kwargs = {k: v for k, v in {
            "endpoint": get("endpoint", "HS_ENDPOINT"),
            "username": get("username", "HS_USERNAME"),
            "password": get("password", "HS_PASSWORD"),
            "bucket": get("bucket", "HS_BUCKET"),
        }.items() if v}
        subtree = get("subtree") or ""
        if isinstance(subtree, str):
            subtree = [p for p in subtree.split("/") if p]
        return cls(source, str(domain), subtree=subtree,
                   interval=float(get("interval") or 2.0), **kwargs)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Sync every ``interval`` seconds in a daemon thread until :meth:`finish`/`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hsds-mirror", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            ok = self.sync()
            delay = self.interval if ok else min(self.max_backoff, max(delay * 2, 1.0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self._close()

    def finish(self) -> bool:
        """Stop the periodic thread and do a last sync + flush; True if it succeeded."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        ok = self.sync()
        self._close()
        return ok

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # closing a connection that is already broken
                logger.debug("closing the HSDS domain failed", exc_info=True)
            self._file = None

    # -- one pass --------------------------------------------------------------------------
    def sync(self) -> bool:
        """One mirror pass. Returns False (and records the error) if HSDS failed."""
        with self._sync_lock:
            try:
                if self._file is None:
                    self._open()
                ops = self._plan()
                self._apply(ops)
                self._file.flush()
            except Exception as exc:
                self.status.failures += 1
                if self.status.last_error is None:
                    logger.warning("HSDS mirror to %s failed (will retry): %r", self.domain, exc)
                self.status.last_error = repr(exc)
                self._state.clear()
                self._group_attrs.clear()
                self._close()
                return False
            if self.status.last_error is not None:
                logger.info("HSDS mirror to %s recovered", self.domain)
            self.status.last_error = None
            self.status.syncs += 1
            self.status.last_sync = time.time()
            return True

    def _open(self) -> None:
        import h5pyd

        self._file = h5pyd.File(self.domain, "w", **self._kwargs)
        self._state = {(): None}
        self._group_attrs = {}

    def _plan(self) -> list[_Op]:
        ops: list[_Op] = []
        seen: set[Path] = {()}
        with self._source.locked() as publish:
            node = tree.root_node(publish)
            try:
                for name in self.subtree:
                    node = tree.child(node, name)
            except NotFound:
                node = tree.root_node({})
            if node.kind != "g":
                node = tree.root_node({})
            base = len(node.path)
            self._plan_group(node, base, ops, seen)
        for path in sorted(set(self._state) - seen, key=len):
            if any(path[:i] in set(self._state) - seen for i in range(1, len(path))):
                continue  # a parent is deleted already
            ops.append(_Op("delete", path))
        return ops

    def _plan_group(self, node: tree.Node, base: int, ops: list[_Op], seen: set[Path]) -> None:
        rel = node.path[base:]
        attrs = [(n, values.read(v)) for n, v in tree.attributes(node)]
        key = _attrs_key(attrs)
        if self._group_attrs.get(rel) != key:
            ops.append(_Op("attrs", rel, attrs=attrs))
        for kid in tree.children(node):
            kpath = kid.path[base:]
            seen.add(kpath)
            old = self._state.get(kpath, "missing")
            if kid.kind == "g":
                if old != "missing" and old is not None:
                    ops.append(_Op("delete", kpath))
                if old == "missing" or old is not None:
                    ops.append(_Op("create_group", kpath))
                self._plan_group(kid, base, ops, seen)
            else:
                self._plan_dataset(kid, kpath, old, ops)

    def _plan_dataset(self, kid: tree.Node, kpath: Path, old: Any, ops: list[_Op]) -> None:
        view = kid.view
        assert view is not None
        attrs = [(n, values.read(v)) for n, v in tree.attributes(kid)]
        akey = _attrs_key(attrs)
        dtype = "vlen" if view.vlen else view.wire_dtype.str
        if view.kind == "array" and not view.vlen and view.shape:
            arr = kid.value
            digest = _digest(arr)
            if isinstance(old, _DsState) and old.dtype == dtype and old.shape == view.shape:
                if old.digest != digest:
                    ops.append(_Op("write", kpath, data=values.read(view), resizable=True))
                if old.attrs != akey:
                    ops.append(_Op("attrs", kpath, attrs=attrs))
            elif (isinstance(old, _DsState) and old.resizable and old.dtype == dtype
                  and len(old.shape) == len(view.shape) and old.shape[1:] == view.shape[1:]
                  and old.shape[0] < view.shape[0]
                  and _digest(arr[: old.shape[0]]) == old.digest):
                from dranspose.hdfrest.selection import Selection

                n0 = old.shape[0]
                sel = Selection((slice(n0, view.shape[0], 1),
                                 *(slice(0, n, 1) for n in view.shape[1:])))
                ops.append(_Op("append", kpath, data=values.read(view, sel), start=n0))
                if old.attrs != akey:
                    ops.append(_Op("attrs", kpath, attrs=attrs))
            else:
                if old != "missing":
                    ops.append(_Op("delete", kpath))
                ops.append(_Op("write", kpath, data=values.read(view), attrs=attrs,
                               resizable=True))
            self._pending(kpath, _DsState(view.shape, dtype, digest, True, akey))
            return
        data = values.read(view)
        digest = _digest(data)
        if (isinstance(old, _DsState) and old.dtype == dtype and old.shape == view.shape
                and old.digest == digest):
            if old.attrs != akey:
                ops.append(_Op("attrs", kpath, attrs=attrs))
        else:
            if old != "missing":
                ops.append(_Op("delete", kpath))
            ops.append(_Op("write", kpath, data=data, attrs=attrs))
        self._pending(kpath, _DsState(view.shape, dtype, digest, False, akey))

    def _pending(self, path: Path, state: _DsState) -> None:
        # applied optimistically; a failed pass clears all state and starts over
        self._state[path] = state

    # -- writing ---------------------------------------------------------------------------
    def _apply(self, ops: list[_Op]) -> None:
        f = self._file
        for op in ops:
            name = "/" + "/".join(op.path)
            if op.kind == "delete":
                parent = f["/" + "/".join(op.path[:-1])]
                if op.path[-1] in parent:
                    del parent[op.path[-1]]
                self._forget(op.path)
            elif op.kind == "create_group":
                f.create_group(name)
                self._state[op.path] = None
            elif op.kind == "attrs":
                obj = f[name]
                existing = list(obj.attrs)
                if existing:  # HSDS refuses to overwrite: delete, flush, then write
                    for aname in existing:
                        del obj.attrs[aname]
                    f.flush()
                self._write_attrs(obj, op.attrs)
                if not isinstance(self._state.get(op.path), _DsState):  # a group's
                    self._group_attrs[op.path] = _attrs_key(op.attrs)
            elif op.kind == "write":
                self._write_dataset(f, name, op)
            elif op.kind == "append":
                ds = f[name]
                new_rows = op.start + op.data.shape[0]
                ds.resize(new_rows, axis=0)
                ds[op.start:new_rows] = op.data
                self.status.rows_appended += op.data.shape[0]
                self.status.bytes_sent += op.data.nbytes

    def _forget(self, path: Path) -> None:
        for key in [k for k in self._state if k[: len(path)] == path]:
            if key in self._state and key != ():
                del self._state[key]
        for key in [k for k in self._group_attrs if k[: len(path)] == path]:
            del self._group_attrs[key]

    @staticmethod
    def _h5(arr: np.ndarray) -> Any:
        import h5pyd

        if arr.dtype.kind == "O":
            if arr.ndim == 0:
                return str(arr[()])
            return np.array([str(x) for x in arr.ravel()],
                            dtype=h5pyd.string_dtype()).reshape(arr.shape)
        return arr

    def _write_attrs(self, obj: Any, attrs: list[tuple[str, np.ndarray]]) -> None:
        for aname, avalue in attrs:
            obj.attrs[aname] = self._h5(avalue)

    def _write_dataset(self, f: Any, name: str, op: _Op) -> None:
        data = op.data
        if name in f:
            ds = f[name]
            if op.resizable and ds.shape != data.shape:
                ds.resize(data.shape)
            ds[...] = self._h5(data)
        elif op.resizable and data.ndim >= 1:
            row = max(1, int(np.prod(data.shape[1:])) * data.dtype.itemsize)
            rows = max(1, min(max(data.shape[0], 1), (1 << 20) // row))
            ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype,
                                  maxshape=(None, *data.shape[1:]),
                                  chunks=(rows, *data.shape[1:]))
            if data.size:
                ds[...] = data
        elif data.ndim == 0:
            import h5pyd

            dtype = h5pyd.string_dtype() if data.dtype.kind == "O" else data.dtype
            ds = f.create_dataset(name, shape=(), dtype=dtype)
            ds[()] = self._h5(data) if data.dtype.kind == "O" else data[()]
        else:
            ds = f.create_dataset(name, data=self._h5(data))
        self._write_attrs(ds, op.attrs)
        self.status.datasets_written += 1
        self.status.bytes_sent += getattr(data, "nbytes", 0)
