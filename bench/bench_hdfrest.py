"""Benchmark: our HDF REST server vs a real HSDS on the same machine, read through h5pyd.

Reads a 2162x2068 float32 dataset (whole) and a 100-element slice of it, interleaved
A B A B ..., and prints the median of the per-pair time ratios (ours / HSDS; < 1 = faster).
``--feedback`` also measures emit -> SSE subscriber latency of the feedback channel.

    python bench/bench_hdfrest.py            # full run
    python bench/bench_hdfrest.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from typing import Any, Callable

import h5pyd
import numpy as np


from dranspose.hdfrest import FeedbackHub, create_app, mount_feedback  # noqa: E402
from dranspose.hdfrest.hsds_local import LocalHSDS  # noqa: E402

SHAPE = (2162, 2068)


def _serve(app: Any) -> tuple[str, Callable[[], None]]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not (server.started and server.servers):
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_reads(rounds: int) -> list[tuple[str, float, float, float]]:
    data = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    url, stop = _serve(create_app({"frame": data}))
    rows = []
    with LocalHSDS() as hs:
        domain = hs.domain("bench.h5")
        with h5pyd.File(domain, "w", **hs.kwargs()) as f:
            f.create_dataset("frame", data=data)
        ours = h5pyd.File(url + "/", "r")["frame"]
        theirs = h5pyd.File(domain, "r", **hs.kwargs())["frame"]
        assert np.array_equal(ours[()], data) and np.array_equal(theirs[()], data)
        cases: dict[str, Callable[[Any], Any]] = {
            "full 2162x2068 f32": lambda d: d[()],
            "slice 100 elements": lambda d: d[1000, 500:600],
        }
        for name, read in cases.items():
            a, b = [], []
            for _ in range(rounds):
                a.append(_time(lambda: read(ours)))
                b.append(_time(lambda: read(theirs)))
            ratio = statistics.median(x / y for x, y in zip(a, b))
            rows.append((name, statistics.median(a), statistics.median(b), ratio))
    stop()
    return rows


def bench_feedback(n: int) -> tuple[float, float]:
    import httpx

    hub = FeedbackHub()
    from fastapi import FastAPI

    app = FastAPI()
    mount_feedback(app, hub)
    url, stop = _serve(app)
    lat: list[float] = []
    done = threading.Event()

    def sub() -> None:
        with httpx.stream("GET", url + "/feedback", timeout=30) as rsp:
            for line in rsp.iter_lines():
                if line.startswith("data:"):
                    env = json.loads(line[5:])
                    lat.append(time.time() - env["message"]["t"])
                    if len(lat) >= n:
                        done.set()
                        return

    t = threading.Thread(target=sub, daemon=True)
    t.start()
    while not hub._subscribers:
        time.sleep(0.01)
    for _ in range(n):
        hub.emit({"t": time.time()})
        time.sleep(0.002)
    done.wait(30)
    hub.close()
    stop()
    lat.sort()
    return statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--feedback", action="store_true")
    args = p.parse_args()
    rounds = 5 if args.quick else 21
    rows = bench_reads(rounds)
    print(f"\nh5pyd {h5pyd.version.version} reads, {rounds} interleaved pairs (median)")
    print(f"{'case':22s} {'ours ms':>9s} {'HSDS ms':>9s} {'ours/HSDS':>10s}")
    for name, a, b, r in rows:
        print(f"{name:22s} {a * 1e3:9.2f} {b * 1e3:9.2f} {r:10.2f}")
    if args.feedback or not args.quick:
        med, p99 = bench_feedback(200 if args.quick else 1000)
        print(f"\nfeedback emit -> SSE subscriber: median {med * 1e3:.2f} ms, "
              f"p99 {p99 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
