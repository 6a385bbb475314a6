"""Benchmark: dranspose's bslz4 and stream-v2 decoding against the usual Python stack.

Peers (must be installed; the benchmark fails loudly otherwise):
* ``bitshuffle.decompress_lz4`` (PyPI bitshuffle), called as users call it, with its default
  threading: OpenMP over blocks with all cores unless ``OMP_NUM_THREADS`` says otherwise;
* ``cbor2.loads`` + ``bitshuffle.decompress_lz4`` for a full stream-v2 image decode.

Frames: a 2162x2068 uint32 "real-looking" Eiger 4M frame built by tiling the real EIGER 1M
capture image (masked module gaps = 0xFFFFFFFF, sparse counts), and the same gap mask with
Poisson(0.5) counts. Timings are interleaved A B A B ...; we report the median of per-pair
ratios (peer time / our time, > 1 = we are faster).

    python bench/bench_codecs.py            # ~1-2 minutes
    python bench/bench_codecs.py --quick    # < 30 s

Note on the peer: bitshuffle's OpenMP worker busy-waits for several milliseconds after each
call (libgomp's default spin), so in the interleaved A B A B loop it keeps one of the two
cores busy while our call runs; our helper thread has to share that core. The "alone"
columns show both sides without that interference.
"""

from __future__ import annotations

import argparse
from importlib import metadata
import gzip
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

try:
    import bitshuffle
except ImportError as exc:  # pragma: no cover - the benchmark needs its peer
    sys.exit(f"bench_codecs needs the peer package bitshuffle (pip install bitshuffle): {exc}")
import cbor2

from dranspose import backend
from dranspose.codecs import bslz4_compress, bslz4_decompress
from dranspose.protocols import stream2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.* when run as a script
from bench.machine import machine_sample  # noqa: E402

CAPTURES = Path(os.environ.get("DRANSPOSE_CAPTURES", Path(__file__).resolve().parents[1] / "tests" / "data"))
SHAPE = (2162, 2068)


def _capture_image() -> np.ndarray:
    path = CAPTURES / "eiger-legacy-1m-bslz4.dump.cbors.gz"
    with gzip.open(path, "rb") as fh:
        dec = cbor2.CBORDecoder(fh)
        dec.decode()  # header event
        item = dec.decode()
    while isinstance(item, cbor2.CBORTag):
        item = item.value
    sd = item[1]["eigerxes"]
    frames = (sd.value if isinstance(sd, cbor2.CBORTag) else sd)[1]
    return bslz4_decompress(frames[2], np.uint32, (1065, 1030))


def frames() -> dict[str, np.ndarray]:
    real = _capture_image()
    tiled = np.tile(real, (3, 3))[: SHAPE[0], : SHAPE[1]].copy()
    gaps = tiled == 0xFFFFFFFF
    noisy = np.random.default_rng(0).poisson(0.5, SHAPE).astype(np.uint32)
    noisy[gaps] = 0xFFFFFFFF
    return {"eiger-tiled": tiled, "poisson0.5": noisy}


def pairs(a: Callable[[], object], b: Callable[[], object], seconds: float,
          min_pairs: int = 15) -> tuple[float, float, float, float, float]:
    """Interleave A and B; return (median A s, median B s, median of per-pair B/A ratios,
    best A s, best B s). The best times show what a quiet machine would give."""
    a()
    b()
    ta, tb, ratios = [], [], []
    end = time.perf_counter() + seconds
    while len(ratios) < min_pairs or time.perf_counter() < end:
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios), min(ta), min(tb)


def alone(f: Callable[[], object], seconds: float, min_runs: int = 15) -> float:
    """Median time of ``f`` run back to back (no peer in between): the steady-state
    throughput a stream of frames would see."""
    f()
    ts = []
    end = time.perf_counter() + seconds
    while len(ts) < min_runs or time.perf_counter() < end:
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all cores busy while we sleep (other processes, incl. other containers
    on this kernel); Linux only, -1 elsewhere."""
    try:
        _, t0, i0 = machine_sample()
        time.sleep(seconds)
        _, t1, i1 = machine_sample()
    except OSError:
        return -1.0
    return 1.0 - (i1 - i0) / max(1.0 / os.sysconf("SC_CLK_TCK"), t1 - t0)


class OtherLoad:
    """Share of the machine's CPU time used by other processes (including other containers
    on this kernel) between ``start()`` and ``stop()``: total busy time from /proc/stat
    minus this process's own CPU time. Linux only (-1 elsewhere)."""

    def _snap(self) -> tuple[float, float, float]:
        _, total, idle = machine_sample()
        busy = total - idle
        t = os.times()
        return busy, t.user + t.system, time.monotonic()

    def start(self) -> None:
        try:
            self.t0 = self._snap()
        except (OSError, ValueError):
            self.t0 = None

    def stop(self) -> float:
        if self.t0 is None:
            return -1.0
        b1, o1, w1 = self._snap()
        b0, o0, w0 = self.t0
        cores = os.cpu_count() or 1
        return max(0.0, ((b1 - b0) - (o1 - o0)) / max(1e-9, (w1 - w0) * cores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (< 30 s)")
    args = ap.parse_args()
    seconds = 1.0 if args.quick else 6.0
    print(f"backend={backend.NAME}  bitshuffle {bitshuffle.__version__} "
          f"(OpenMP default threads; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"cores={os.cpu_count()}, AVX2={bitshuffle.using_AVX2()})  cbor2 {metadata.version('cbor2')}")
    load0 = tuple(round(x, 2) for x in os.getloadavg())
    busy0 = cpu_busy()
    other = OtherLoad()
    rows = []
    for name, img in frames().items():
        blob = bslz4_compress(img)
        headerless = np.frombuffer(blob, np.uint8)[12:]
        out = np.empty_like(img)
        for nt in (1, 2):
            ours = lambda nt=nt: bslz4_decompress(blob, np.uint32, SHAPE, out=out, nthreads=nt)  # noqa: E731
            peer = lambda: bitshuffle.decompress_lz4(headerless, SHAPE, np.dtype(np.uint32))  # noqa: E731
            other.start()
            rows.append((f"bslz4 {name} ({len(blob) / img.nbytes:.1%})", f"ours nthreads={nt}",
                         *pairs(ours, peer, seconds), alone(ours, seconds / 3), alone(peer, seconds / 3),
                         other.stop()))
        np.testing.assert_array_equal(out, img)

        (msg,) = stream2.encode_image(1, 0, {"threshold_1": img}, "bslz4")
        dec = stream2.Stream2Decoder(nthreads=2)

        def ours_s2() -> np.ndarray:
            return dec.decode(msg).data["threshold_1"]

        def peer_s2() -> np.ndarray:
            obj = cbor2.loads(msg)
            while isinstance(obj, cbor2.CBORTag):
                obj = obj.value
            arr = obj["data"]["threshold_1"].value  # tag 40: [dims, tag 70(tag 56500([...]))]
            dims, typed = arr[0], arr[1]
            algo, _elem, payload = typed.value.value
            assert algo == "bslz4"
            return bitshuffle.decompress_lz4(np.frombuffer(payload, np.uint8)[12:], tuple(dims), np.dtype("<u4"))

        np.testing.assert_array_equal(ours_s2(), peer_s2())
        other.start()
        rows.append((f"stream2 image {name}", "ours nthreads=2", *pairs(ours_s2, peer_s2, seconds),
                     alone(ours_s2, seconds / 3), alone(peer_s2, seconds / 3), other.stop()))

    print(f"load average before/after: {load0} / {tuple(round(x, 2) for x in os.getloadavg())}; "
          f"cores busy before start (while we slept): {busy0:.0%}"
          + ("  WARNING: machine not idle, multi-threaded timings are distorted" if busy0 > 0.1 else ""))
    print(f"{'case':34s} {'ours':16s} {'ours ms':>8s} {'peer ms':>8s} {'peer/ours':>9s}"
          f" | {'best ours':>9s} {'best peer':>9s} {'ratio':>6s} | {'alone ours':>10s} {'alone peer':>10s} {'ratio':>6s} | {'other':>5s}")
    for case, who, ta, tb, r, ba, bb, aa, ab, oth in rows:
        print(f"{case:34s} {who:16s} {ta * 1e3:8.3f} {tb * 1e3:8.3f} {r:8.2f}x"
              f" | {ba * 1e3:9.3f} {bb * 1e3:9.3f} {bb / ba:5.2f}x"
              f" | {aa * 1e3:10.3f} {ab * 1e3:10.3f} {ab / aa:5.2f}x | {oth:5.0%}")
    print("peer/ours = median of per-pair ratios (> 1: dranspose faster), the headline figure;"
          " best = minimum over pairs; alone = median of back-to-back runs without the peer in"
          " between (a stream of frames; bitshuffle's OpenMP threads stay warm);"
          " other = CPU share used by other processes during the row (> 5%: the row is distorted)")


if __name__ == "__main__":
    main()
