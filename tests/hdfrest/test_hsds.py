"""Real HSDS (unix sockets, own process group): the mirror writes publish into a domain, and
h5pyd reads identical trees, dtypes and values from our server and from HSDS."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from typing import Any, Iterator

import h5pyd
import numpy as np
import pytest
from tests.hdfrest.matrix import make_publish
from tests.hdfrest.server_util import FiveXXRecorder, Source, serve
from tests.paths import DATA

from dranspose.hdfrest import create_app
from dranspose.hdfrest.hsds_local import LocalHSDS
from dranspose.hdfrest.hsds_mirror import HSDSMirror

pytestmark = pytest.mark.e2e  # a real HSDS


@pytest.fixture(scope="module")
def hsds() -> Iterator[LocalHSDS]:
    with LocalHSDS() as hs:
        yield hs


def _tree(f: Any) -> dict[str, Any]:
    """Every object: (kind, dtype, shape, value, attributes), values normalised."""
    out: dict[str, Any] = {}

    def norm(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, np.ndarray):
            if v.dtype.kind == "O":
                return [norm(x) for x in v.tolist()]
            return (v.dtype.str if v.dtype.names is None else str(v.dtype.descr), v.shape,
                    v.tobytes())
        if isinstance(v, np.generic):
            return norm(np.asarray(v))
        return v

    def attrs(obj: Any) -> dict[str, Any]:
        return {k: norm(obj.attrs[k]) for k in obj.attrs}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5pyd.Dataset):
            dt = obj.dtype
            out[name] = ("d", str(dt.descr) if dt.names else dt.str if dt.kind != "O" else "O",
                         obj.shape, norm(obj[()]), attrs(obj))
        else:
            out[name] = ("g", sorted(obj.keys()), attrs(obj))

    out["/"] = ("g", sorted(f.keys()), attrs(f))
    f.visititems(visit)
    return out


def _both(url: str, hs: LocalHSDS, domain: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with h5pyd.File(url + "/", "r") as ours, h5pyd.File(domain, "r", **hs.kwargs()) as theirs:
        return _tree(ours), _tree(theirs)


def test_mirror_identical_to_server(hsds: LocalHSDS) -> None:
    source = Source(make_publish())
    domain = hsds.domain("mirror.h5")
    mirror = HSDSMirror(source, domain, **hsds.kwargs())
    rec = FiveXXRecorder(create_app(source))
    with serve(rec) as url:
        assert mirror.sync(), mirror.status
        ours, theirs = _both(url, hsds, domain)
        assert sorted(ours) == sorted(theirs)
        for path in ours:
            assert ours[path] == theirs[path], path
        # live: grow a dataset, change one, add and remove keys, change an attribute
        with source.publish_rlock:
            pub = source.publish
            pub["data"]["f32"] = np.concatenate([pub["data"]["f32"], np.ones((2, 4), "<f4")])
            pub["data"]["u16"] = pub["data"]["u16"] + 1
            pub["new"] = {"x": np.arange(3)}
            del pub["zzz_last"]
            pub["data_attrs"]["n"] = 4
        before = mirror.status.datasets_written
        assert mirror.sync(), mirror.status
        assert mirror.status.rows_appended == 2  # grown: appended, not rewritten
        assert mirror.status.datasets_written - before == 2  # u16 rewritten, new/x created
        ours, theirs = _both(url, hsds, domain)
        assert sorted(ours) == sorted(theirs) and "zzz_last" not in theirs
        for path in ours:
            assert ours[path] == theirs[path], path
        assert mirror.finish()
    assert rec.failures == []


def test_mirror_subtree_periodic(hsds: LocalHSDS, exit_stack: ExitStack) -> None:
    source = Source({"scan": {"line": np.zeros(4)}, "other": 1})
    domain = hsds.domain("sub.h5")
    mirror = HSDSMirror(source, domain, subtree=["scan"], interval=0.1, **hsds.kwargs())
    mirror.start()
    exit_stack.callback(mirror.stop)
    for i in range(1, 4):
        with source.publish_rlock:
            source.publish["scan"]["line"] = np.concatenate(
                [source.publish["scan"]["line"], np.full(4, float(i))])
        time.sleep(0.3)
    assert mirror.finish()
    with h5pyd.File(domain, "r", **hsds.kwargs()) as f:
        assert list(f.keys()) == ["line"]
        np.testing.assert_array_equal(f["line"][()], source.publish["scan"]["line"])
    assert mirror.status.rows_appended >= 4


@pytest.mark.allow_error_log  # the failed mirror pushes are logged
def test_unreachable_hsds_never_blocks_the_reducer(tmp_path: Any, exit_stack: ExitStack) -> None:
    source = Source({"x": np.zeros(10)})
    sock = str(tmp_path / "nowhere.sock").replace("/", "%2F")
    mirror = HSDSMirror(source, "/home/u/x.h5", interval=0.05, max_backoff=0.2,
                        endpoint=f"http+unix://{sock}", username="u", password="p")
    mirror.start()
    exit_stack.callback(mirror.stop)
    waits = []
    deadline = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < deadline:  # process_result keeps taking the lock
        t0 = time.perf_counter()
        with source.publish_rlock:
            source.publish["x"][:] = i
        waits.append(time.perf_counter() - t0)
        i += 1
        time.sleep(0.005)
    assert mirror.status.failures >= 2  # reported and retried
    assert mirror.status.last_error is not None
    assert max(waits) < 0.5
    assert mirror.finish() is False
    assert threading.active_count() < 50


def test_from_settings(hsds: LocalHSDS, monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings:
        hsds_domain = None

    assert HSDSMirror.from_settings({"a": 1}, Settings()) is None
    monkeypatch.setenv("DRANSPOSE_HSDS_DOMAIN", hsds.domain("env.h5"))
    monkeypatch.setenv("HS_ENDPOINT", hsds.endpoint)
    monkeypatch.setenv("HS_USERNAME", hsds.username)
    monkeypatch.setenv("HS_PASSWORD", hsds.password)
    monkeypatch.setenv("HS_BUCKET", hsds.bucket)
    monkeypatch.setenv("DRANSPOSE_HSDS_SUBTREE", "scan")
    mirror = HSDSMirror.from_settings({"scan": {"v": np.arange(3)}})
    assert mirror is not None and mirror.subtree == ("scan",)
    assert mirror.finish()
    with h5pyd.File(hsds.domain("env.h5"), "r", **hsds.kwargs()) as f:
        np.testing.assert_array_equal(f["v"][()], np.arange(3))


def test_replay_mirrors_publish_into_hsds(hsds: LocalHSDS, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dranspose replay`` with DRANSPOSE_HSDS_DOMAIN set: the tutorial's publish lands in HSDS."""

    from dranspose.replay import replay

    dump = DATA / "dump_xrd.cbors"
    for name, value in (("DRANSPOSE_HSDS_DOMAIN", hsds.domain("replay.h5")), ("HS_ENDPOINT", hsds.endpoint),
                        ("HS_USERNAME", hsds.username), ("HS_PASSWORD", hsds.password), ("HS_BUCKET", hsds.bucket)):
        monkeypatch.setenv(name, value)
    summary = replay("examples.tutorial.worker:TutorialWorker", "examples.tutorial.reducer:TutorialReducer",
                     zmq_files=[str(dump)])
    assert summary.events == 11 and summary.errors == 0
    with h5pyd.File(hsds.domain("replay.h5"), "r", **hsds.kwargs()) as f:
        sums = f["sum"][()]
        assert sums.shape == (9,) and np.all(sums > 0)
        assert f["map"].shape == (3, 3)
