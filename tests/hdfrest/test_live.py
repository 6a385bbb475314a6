"""Live behaviour: growth visible after refresh(), no torn arrays under concurrent writes,
publish replaced wholesale, silx headless."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import h5pyd
import numpy as np
import pytest
from tests.cluster import Spawn
from tests.hdfrest.server_util import FiveXXRecorder, Source, serve
from tests.hdfrest.test_h5pyd018 import CLIENT, _decode

from dranspose.hdfrest import create_app

pytestmark = pytest.mark.e2e  # a live HDF REST server


def _server(publish: dict[str, Any]) -> tuple[Source, FiveXXRecorder]:
    source = Source(publish)
    return source, FiveXXRecorder(create_app(source))


def test_growth_after_refresh_h5pyd10() -> None:
    source, rec = _server({"grow": np.arange(3.0), "lst": [1.0, 2.0]})
    with serve(rec) as url, h5pyd.File(url + "/", "r") as f:
        ds, lst = f["grow"], f["lst"]
        assert ds.shape == (3,) and lst.shape == (2,)
        with source.publish_rlock:
            source.publish["grow"] = np.arange(10.0)
            source.publish["lst"].append(3.0)
            source.publish["new"] = np.ones(2)
        assert ds.shape == (3,)  # an old handle keeps its shape until refresh()
        ds.refresh()
        lst.refresh()
        assert ds.shape == (10,)
        np.testing.assert_array_equal(ds[()], np.arange(10.0))
        np.testing.assert_array_equal(lst[()], [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(ds[7:10], [7.0, 8.0, 9.0])
    with serve(rec) as url, h5pyd.File(url + "/", "r") as f:
        assert list(f.keys()) == ["grow", "lst", "new"]
    assert rec.failures == []


def test_growth_after_refresh_h5pyd018(h5pyd018_python: Path, exit_stack: ExitStack, spawn: Spawn) -> None:
    source, rec = _server({"grow": np.arange(3.0)})
    url = exit_stack.enter_context(serve(rec))
    proc = spawn([str(h5pyd018_python), str(CLIENT), url],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"r": {"op": "refresh", "path": "grow"}}) + "\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline()) == {"ready": [3]}
    with source.publish_rlock:
        source.publish["grow"] = np.arange(8.0)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])["results"]["r"]
    assert res["stale"] == [3] and res["after"] == [8]
    np.testing.assert_array_equal(_decode(res["value"]), np.arange(8.0))
    assert rec.failures == []


def test_no_torn_arrays_under_concurrent_writes() -> None:
    """A writer mutates in place under publish_rlock, and replaces publish wholesale, while
    two h5pyd readers loop: every array read is uniform (one generation), never torn."""
    shape = (128, 256)
    source, rec = _server({"frame": np.zeros(shape), "counter": 0})
    stop = threading.Event()
    errors: list[str] = []
    reads = [0, 0]

    def writer() -> None:
        gen = 0
        while not stop.is_set():
            gen += 1
            with source.publish_rlock:
                if gen % 10 == 0:  # replaced wholesale (what many reducers do)
                    source.publish = {"frame": np.full(shape, float(gen)), "counter": gen}
                else:
                    frame = source.publish["frame"]
                    for row in range(shape[0]):  # row by row, yielding the GIL:
                        frame[row, :] = gen      # without the lock, reads would tear
                        if row % 16 == 0:
                            time.sleep(0)
                    source.publish["counter"] = gen
            time.sleep(0.0005)

    def reader(slot: int, url: str) -> None:
        try:
            with h5pyd.File(url + "/", "r") as f:
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    ds = f["frame"]
                    for part in (ds[()], ds[10:90, 3:200:3], ds[[0, 127], :]):
                        if np.unique(part).size != 1:
                            errors.append(f"torn read: {np.unique(part)[:5]}")
                    reads[slot] += 1
        except Exception as exc:
            errors.append(repr(exc))

    with serve(rec) as url:
        w = threading.Thread(target=writer)
        w.start()
        readers = [threading.Thread(target=reader, args=(i, url)) for i in range(2)]
        for r in readers:
            r.start()
        for r in readers:
            r.join(30)
        stop.set()
        w.join(10)
    assert errors == [], errors[:3]
    assert min(reads) >= 5, reads
    assert rec.failures == []


def test_silx_headless(live_module: Any) -> None:
    import silx.io as silx_io  # a test dependency: must be installed, never skipped
    from silx.io import nxdata

    with silx_io.open(live_module.url + "/") as f:
        default = nxdata.get_default(f)
        assert default is not None and default.is_valid
        np.testing.assert_array_equal(default.signal[()], np.arange(5.0) ** 2)
        np.testing.assert_array_equal(default.axes[0][()], np.arange(5.0))
        assert silx_io.is_group(f["data"]) and silx_io.is_dataset(f["data/f32"])
        assert set(f["data"].keys()) >= {"f32", "cmp", "bools"}
