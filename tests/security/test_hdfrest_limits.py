"""Bounded work per HDF REST request: hostile selections get a 4xx fast, before anything
the size of the answer is allocated."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from dranspose.hdfrest import create_app, selection
from dranspose.hdfrest.errors import SelectionError
from dranspose.services.http import BackgroundServer


class Source:
    def __init__(self) -> None:
        self.publish: dict[str, Any] = {"img": np.arange(812 * 812, dtype=np.float32).reshape(812, 812)}  # 2.6 MB
        self.publish_rlock = threading.RLock()


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, str]]:
    server = BackgroundServer(create_app(Source())).start()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        root = c.get("/").json()["root"]
        links = c.get(f"/groups/{root}/links").json()["links"]
        yield c, next(link["id"] for link in links if link["title"] == "img")
    server.stop()


def test_the_reported_selection_is_refused_fast_without_allocating(served: tuple[httpx.Client, str]) -> None:
    c, dset = served
    rows = ",".join(["0"] * 400)
    hostile = f"[[{rows}],[{rows}]]"  # ~1.6 kB: once a 400x400 copy of repeated elements per request
    many = ",".join(str(i) for i in range(800))
    tracemalloc.start()
    try:
        t0 = time.monotonic()
        for select in [hostile, f"[[{many},799],[{many}]]", "[[" + ",".join(["1"] * 900) + "],:]"]:
            r = c.get(f"/datasets/{dset}/value", params={"select": select}, headers={"accept": "application/octet-stream"})
            assert r.status_code == 400, r.text
            assert "duplicate" in r.json()["message"] or "indices for an extent" in r.json()["message"]
        r = c.post(f"/datasets/{dset}/value", json={"select": hostile})
        assert r.status_code == 400
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 1_000_000  # far below the 2.6 MB dataset, let alone a copy of the selection


def test_output_caps_answer_413_before_allocating(served: tuple[httpx.Client, str], monkeypatch: pytest.MonkeyPatch) -> None:
    c, dset = served
    monkeypatch.setattr(selection, "MAX_BYTES", 1_000_000)
    tracemalloc.start()
    try:
        r = c.get(f"/datasets/{dset}/value", headers={"accept": "application/octet-stream"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 413 and "read it in parts" in r.json()["message"]
    assert peak < 1_000_000
    r = c.get(f"/datasets/{dset}/value", params={"select": "[0:100,0:812]"}, headers={"accept": "application/octet-stream"})
    assert r.status_code == 200 and len(r.content) == 100 * 812 * 4
    r = c.get(f"/datasets/{dset}/value", params={"select": "[0:100,0:812]"})  # JSON costs more per element
    assert r.status_code == 413
    monkeypatch.setattr(selection, "MAX_ELEMENTS", 10)
    assert c.post(f"/datasets/{dset}/value", json={"points": [[i, i] for i in range(11)]}).status_code == 413


def test_selection_units() -> None:
    with pytest.raises(SelectionError, match="duplicate"):
        selection.parse_select("[[1,2,1],:]", (5, 5))
    with pytest.raises(SelectionError, match="indices for an extent"):
        selection.parse_select("[[" + ",".join(["0"] * 6) + "],:]", (5, 5))
    sel = selection.parse_select("[[0,2,4],1:3]", (5, 5))
    assert selection.check_size(sel, 4, True) == 6
    with pytest.raises(SelectionError) as info:
        selection.check_size(sel, 4, True, max_elements=5)
    assert info.value.status == 413
