"""A/B: h5pyd small reads from a BackgroundServer with and without TCP_NODELAY on its
listening socket (interleaved, median ratio). Without it, each small response on a kept-alive
connection waits for the client's delayed ACK.

    python bench/bench_http_nodelay.py
"""
import socket
import statistics
import time

import h5pyd
import numpy as np

import dranspose.services.http as H
from dranspose import hdfrest
pub = {"x": np.arange(1000.0)}
orig = socket.socket.setsockopt
def run(nodelay):
    def patched(self, level, opt, val):
        if opt == socket.TCP_NODELAY and not nodelay:
            return None
        return orig(self, level, opt, val)
    socket.socket.setsockopt = patched
    s = H.BackgroundServer(hdfrest.create_app(pub)).start()
    socket.socket.setsockopt = orig
    try:
        with h5pyd.File(f"{s.url}/", "r") as f:
            d = f["x"]
            t = time.perf_counter()
            for _ in range(20):
                d[0:10]
            return (time.perf_counter() - t) / 20
    finally:
        s.stop()
ratios = []
for _ in range(3):
    a, b = run(True), run(False)
    ratios.append(b / a)
    print(f"with TCP_NODELAY {a*1e3:.1f} ms/read, without {b*1e3:.1f} ms/read")
print("median ratio without/with", statistics.median(ratios))
