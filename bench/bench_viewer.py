"""Benchmark: the live viewer's poll (tree + decimated payload) over real HTTP, and the cost
the reducer pays per result for the process_result histogram.

For each published value: the time of a poll that returns the data (first load) and of a poll
with the client's etag (nothing changed), median over repeats, plus the bytes sent. The
histogram cost is compared with an empty call, interleaved (median of per-pair differences).

    python bench/bench_viewer.py            # full run
    python bench/bench_viewer.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI

from dranspose import viewer
from dranspose.metrics.reducer import ReducerMetrics
from dranspose.services.http import BackgroundServer

CASES: dict[str, Any] = {
    "curve_10k_f8": np.random.default_rng(0).random(10_000),
    "curve_1M_f8": np.random.default_rng(1).random(1_000_000),
    "image_512_u16": np.random.default_rng(2).integers(0, 1000, (512, 512), dtype=np.uint16),
    "image_2068x2162_f4": np.random.default_rng(3).random((2162, 2068), dtype=np.float32),
    "image_4096_u32": np.random.default_rng(4).integers(0, 1000, (4096, 4096), dtype=np.uint32),
    "stack_100x1024x1024_u16": np.zeros((100, 1024, 1024), dtype=np.uint16),
}


def poll_times(client: httpx.Client, path: str, repeats: int) -> tuple[float, float, int]:
    first, same, size = [], [], 0
    etag = ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = client.get("/viewer/api/poll", params=[("path", path)])
        first.append(time.perf_counter() - t0)
        size = len(r.content)
        etag = r.json()["datasets"][path]["etag"]
        t0 = time.perf_counter()
        r = client.get("/viewer/api/poll", params=[("path", path), ("etag", etag)])
        same.append(time.perf_counter() - t0)
        assert r.json()["datasets"][path].get("unchanged") is True
    return statistics.median(first), statistics.median(same), size


class _Fake:
    def __init__(self) -> None:
        self.total_processed, self.stale = 0, 0
        self.processed: dict[str, int] = {}
        self.errors: dict[str, int] = {}


def histogram_cost(n: int) -> float:
    metrics = ReducerMetrics(_Fake())
    diffs = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(1000):
            t = time.perf_counter()
            metrics.observe_result(time.perf_counter() - t)
        t1 = time.perf_counter()
        for _ in range(1000):
            t = time.perf_counter()
            _ = time.perf_counter() - t
        t2 = time.perf_counter()
        diffs.append(((t1 - t0) - (t2 - t1)) / 1000)
    return statistics.median(diffs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeats = 5 if args.quick else 20
    app = FastAPI()
    viewer.mount(app, CASES)
    server = BackgroundServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            print(f"{'value':28} {'poll (data)':>12} {'poll (same)':>12} {'bytes':>10}")
            for name in CASES:
                full, same, size = poll_times(client, "/" + name, repeats)
                print(f"{name:28} {full * 1e3:9.1f} ms {same * 1e3:9.1f} ms {size:10d}")
    finally:
        server.stop()
    print(f"process_result histogram: {histogram_cost(20 if args.quick else 100) * 1e6:.2f} µs per result")


if __name__ == "__main__":
    main()
