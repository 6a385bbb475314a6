"""A/B: h5pyd small reads from a BackgroundServer (the reducer's and replay's HTTP server)
with and without TCP_NODELAY on its listening socket, interleaved, median of per-pair ratios.
Without it, each small response on a kept-alive connection waits for the client's delayed ACK.

    python bench/bench_http_nodelay.py
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any

import h5pyd
import numpy as np

from dranspose import hdfrest
from dranspose.services.http import BackgroundServer

PUBLISH = {"x": np.arange(1000.0)}
READS = 20


def seconds_per_read(nodelay: bool) -> float:
    original = socket.socket.setsockopt

    def setsockopt(self: socket.socket, level: int, opt: int, value: Any) -> None:
        if opt == socket.TCP_NODELAY and not nodelay:
            return None
        return original(self, level, opt, value)

    socket.socket.setsockopt = setsockopt  # type: ignore[method-assign]
    try:
        server = BackgroundServer(hdfrest.create_app(PUBLISH)).start()
    finally:
        socket.socket.setsockopt = original  # type: ignore[method-assign]
    try:
        with h5pyd.File(f"{server.url}/", "r") as f:
            d = f["x"]
            t = time.perf_counter()
            for _ in range(READS):
                d[0:10]
            return (time.perf_counter() - t) / READS
    finally:
        server.stop()


def main() -> None:
    ratios = []
    for _ in range(3):
        with_, without = seconds_per_read(True), seconds_per_read(False)
        ratios.append(without / with_)
        print(f"with TCP_NODELAY {with_ * 1e3:.1f} ms/read, without {without * 1e3:.1f} ms/read")
    print(f"median ratio without/with: {statistics.median(ratios):.1f}")


if __name__ == "__main__":
    main()
