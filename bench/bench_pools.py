"""Thread pools that share the node: bslz4 decompression and azimuthal integration with the
default thread count (``nthreads=None`` / the process budget of :mod:`dranspose.threads`)
against the single-thread figure and against a fixed 2 threads, with and without another
CPU-bound process running. Interleaved (1 thread, default, 2 threads, ...), medians.

    python bench/bench_pools.py            # both loads
    python bench/bench_pools.py --quick

Target (issue 13): with one CPU-bound neighbour the default is no slower than 1 thread.
The budget follows the CPU time other processes took over the last second or so; the neighbour
runs 3 s before measuring (``--settle``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dranspose import threads  # noqa: E402
from dranspose.codecs import bslz4_compress, bslz4_decompress  # noqa: E402


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def timed(fn: Callable[[], Any], reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def measure(cases: dict[str, Callable[[], Any]], rounds: int, reps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(timed(fn, reps))
    return {k: statistics.median(v) for k, v in times.items()}


def workloads(quick: bool) -> dict[str, dict[str, Callable[[], Any]]]:
    frame = (np.random.default_rng(0).poisson(3, (2162, 2068))).astype(np.uint32)
    blob = bytes(bslz4_compress(frame))
    out = np.empty_like(frame)

    def bslz4(n: int | None) -> Callable[[], Any]:
        return lambda: bslz4_decompress(blob, np.uint32, frame.shape, out=out, nthreads=n)

    loads: dict[str, dict[str, Callable[[], Any]]] = {
        "bslz4 2162x2068 uint32": {"1 thread": bslz4(1), "default": bslz4(None), "2 threads": bslz4(2)}
    }
    if not quick:
        import numba

        from dranspose.kernels import AzimuthalIntegrator, Geometry

        pixel = 75e-6
        geom = Geometry(dist=0.2, poni1=1081.3 * pixel, poni2=1034.7 * pixel, rot1=0.003, rot2=-0.002,
                        wavelength=1.0e-10, pixel1=pixel, pixel2=pixel)
        integ = AzimuthalIntegrator(geom, frame.shape, 1000, "q_nm^-1", radial_range=(0.5, 45.0), warmup=(np.uint32,))

        def integrate(n: int | None) -> Callable[[], Any]:
            def run() -> Any:
                numba.set_num_threads(n if n is not None else threads.budget())
                return integ.integrate1d(frame)
            return run

        loads["integrate1d 1000 bins"] = {"1 thread": integrate(1), "default": integrate(None), "2 threads": integrate(2)}
    return loads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--settle", type=float, default=None, help="seconds the neighbour runs before measuring")
    args = ap.parse_args()
    rounds, reps = (5, 10) if args.quick else (15, 20)
    settle = args.settle if args.settle is not None else 3.0
    loads = workloads(args.quick)
    print(f"allowed CPUs {threads.allowed_cpus()}")
    for label in ("idle", "one CPU-bound neighbour"):
        stop = mp.Event()
        spinner = None
        if label != "idle":
            spinner = mp.Process(target=_spin, args=(stop,), daemon=True)
            spinner.start()
            time.sleep(settle)
        try:
            threads.set_local_workers(1)  # re-read the load now
            print(f"\n{label}: default budget {threads.budget()} thread(s)")
            for name, cases in loads.items():
                t = measure(cases, rounds, reps)
                print(f"  {name:<24}" + "".join(f"{k} {v * 1e3:7.2f} ms   " for k, v in t.items())
                      + f"default/1 thread {t['default'] / t['1 thread']:.2f}")
        finally:
            stop.set()
            if spinner is not None:
                spinner.join(5)


if __name__ == "__main__":
    main()
