"""Benchmark dranspose.kernels against pyFAI and OnDA's peakfinder8 in the same run.

Each case times ours and the peer alternately (A B A B ...) on the same 2162 x 2068 uint32
frame with the same thread count, and reports the median of the per-pair speed-up ratios.
Also reports frames/s against the machine's memory-bandwidth limit (bytes touched per frame /
measured copy bandwidth).

    python bench/bench_kernels.py            # full run (a few minutes)
    python bench/bench_kernels.py --quick    # under a minute
    python bench/bench_kernels.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer cases and pairs (< 1 minute)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine (default 2)")
    parser.add_argument("--pairs", type=int, default=None, help="A/B pairs per case")
    return parser.parse_args()


ARGS = _parse()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["NUMBA_NUM_THREADS"] = str(ARGS.threads)
# pyFAI's and Numba's OpenMP runtimes are two different libgomp copies in one process; with
# the default (active) wait policy the idle threads of one spin on the cores while the other
# runs. Passive waiting, for both, keeps the alternating A/B timings independent.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from dranspose.kernels import AzimuthalIntegrator, DispersionSpotFinder, Geometry, PeakFinder8  # noqa: E402
from dranspose.kernels.synthetic import match, spot_frame  # noqa: E402

SHAPE = (2162, 2068)
PIXEL = 75e-6
GEOM = Geometry(dist=0.2, poni1=1081.3 * PIXEL, poni2=1034.7 * PIXEL, rot1=0.003, rot2=-0.002,
                wavelength=1.0e-10, pixel1=PIXEL, pixel2=PIXEL)
PF8 = dict(adc_threshold=20.0, min_snr=5.0, min_pix_count=2, max_pix_count=40, local_bg_radius=3)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ab(ours: Callable[[], Any], peer: Callable[[], Any], pairs: int) -> tuple[float, float, float]:
    """(our median s, peer median s, median of per-pair peer/ours ratios), after one warm-up each."""
    ours()
    peer()
    t_ours, t_peer, ratios = [], [], []
    for _ in range(pairs):
        a = timed(ours)
        b = timed(peer)
        t_ours.append(a)
        t_peer.append(b)
        ratios.append(b / a)
    return statistics.median(t_ours), statistics.median(t_peer), statistics.median(ratios)


@njit(parallel=True, cache=True)
def _pcopy(src: Any, dst: Any) -> None:
    for i in prange(src.shape[0]):
        dst[i] = src[i]


def copy_bandwidth(nbytes: int, reps: int = 15) -> float:
    """Bytes copied per second by a parallel Numba copy of an ``nbytes`` buffer (KERNELS.md's
    convention: ~20 GB/s here, i.e. one 4M uint32 frame in ~1 ms)."""
    src = np.ones(nbytes // 4, dtype=np.uint32)
    dst = np.empty_like(src)
    _pcopy(src, dst)
    best = statistics.median(timed(lambda: _pcopy(src, dst)) for _ in range(reps))
    return nbytes / best


def _integration_pair(ours: Any, ref: Any, image: Any, npt: int, kw: dict[str, Any], method: tuple[str, ...],
                      err: str | None) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Callables running one frame through our integrator and pyFAI with the same settings."""
    if "npt_azim" in kw:
        return (lambda: ours.integrate2d(image),
                lambda: ref.integrate2d_ng(image, npt, kw["npt_azim"], unit="q_nm^-1", radial_range=(0.5, 45.0),
                                           azimuth_range=(-180.0, 180.0), method=method))
    return (lambda: ours.integrate1d(image),
            lambda: ref.integrate1d(image, npt, unit="q_nm^-1", radial_range=(0.5, 45.0), method=method,
                                    error_model=err))


def main() -> int:
    pairs = ARGS.pairs or (3 if ARGS.quick else 10)
    print(f"threads={ARGS.threads} numba={numba.__version__} layer={numba.config.THREADING_LAYER} "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} frame={SHAPE} uint32 pairs={pairs}")
    rng = np.random.default_rng(0)
    image, truth, radius = spot_frame(SHAPE, 300, seed=1)
    powder = rng.poisson(100.0, SHAPE).astype(np.uint32)
    cached = copy_bandwidth(powder.nbytes)
    bandwidth = copy_bandwidth(256 << 20, reps=5)
    print(f"copy bandwidth: {bandwidth / 1e9:.1f} GB/s for 256 MB (DRAM; used for the limit), "
          f"{cached / 1e9:.1f} GB/s for one frame (cache-assisted); bytes copied per second")
    print("limit = copy bandwidth / bytes touched per frame; reads alone can beat a copy's rate, "
          "so a kernel may exceed 100%")
    rows: list[tuple[str, float, float, float, str, float]] = []

    import pyFAI
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator as PyFAI

    ref = PyFAI(dist=GEOM.dist, poni1=GEOM.poni1, poni2=GEOM.poni2, rot1=GEOM.rot1, rot2=GEOM.rot2,
                rot3=GEOM.rot3, wavelength=GEOM.wavelength, detector=Detector(PIXEL, PIXEL, max_shape=SHAPE))
    cases = [
        ("1D none, 1000 bins", dict(npt=1000), ("no", "csr", "cython"), None, 10.0),
        ("1D bbox, 1000 bins", dict(npt=1000, splitting="bbox"), ("bbox", "csr", "cython"), None, 4.0),
        ("1D bbox + Poisson", dict(npt=1000, splitting="bbox", error_model="poisson"), ("bbox", "csr", "cython"),
         "poisson", 4.0),
        ("2D none, 500x360", dict(npt=500, npt_azim=360), ("no", "csr", "cython"), None, 8.0),
        ("2D bbox, 500x360", dict(npt=500, npt_azim=360, splitting="bbox"), ("bbox", "csr", "cython"), None, 8.0),
    ]
    if ARGS.quick:
        cases = [cases[0], cases[1], cases[3]]
    for name, kw, method, err, target in cases:
        kw = dict(kw)
        npt = kw.pop("npt")
        ours = AzimuthalIntegrator(GEOM, SHAPE, npt, "q_nm^-1", radial_range=(0.5, 45.0),
                                   azimuth_range=(-180.0, 180.0) if "npt_azim" in kw else None,
                                   warmup=(np.uint32,), **kw)
        run_ours, run_peer = _integration_pair(ours, ref, powder, npt, kw, method, err)
        t_a, t_b, ratio = ab(run_ours, run_peer, pairs)
        touched = powder.nbytes + ours.nbytes_touched
        rows.append((name, t_a, t_b, ratio, f"pyFAI {pyFAI.version} {method[0]}/csr", touched))
        print(f"  {name}: ours {t_a * 1e3:.1f} ms, pyFAI {t_b * 1e3:.1f} ms, x{ratio:.1f} (target x{target:g})",
              flush=True)

    from om.algorithms._crystallography import peakfinder_8

    finder = PeakFinder8(radius, **PF8, warmup=(np.uint32,))
    good = np.ones(SHAPE, dtype=np.int8)
    as_float = image.astype(np.float32)
    nothing = np.zeros(1, np.int32)

    def om(data: np.ndarray) -> Any:
        return peakfinder_8(2048, data, good, radius, 0, nothing, nothing, 0, SHAPE[1], SHAPE[0], 1, 1,
                            PF8["adc_threshold"], PF8["min_snr"], PF8["min_pix_count"], PF8["max_pix_count"],
                            PF8["local_bg_radius"])

    t_a, t_b, ratio = ab(lambda: finder.find(image), lambda: om(as_float), pairs)
    # one pass grouping pixels by radius (read image + radius codes, write float32 copy), the
    # statistics on the grouped copy, one seed pass (image + radius codes)
    touched = 2 * (image.nbytes + finder._rcode.nbytes) + 2 * finder._sorted.nbytes
    rows.append(("peakfinder8 (OM given float32)", t_a, t_b, ratio, "ondamonitor full mode", touched))
    t_a2, t_c, ratio2 = ab(lambda: finder.find(image), lambda: om(image.astype(np.float32)), max(2, pairs // 2))
    rows.append(("peakfinder8 (OM incl. uint32->f32)", t_a2, t_c, ratio2, "ondamonitor full mode", touched))
    peaks = finder.find(image)
    res = om(as_float)
    ours_pos = np.stack([peaks["ss"], peaks["fs"]], 1).astype(float)
    om_pos = np.array([res[1], res[0]], dtype=float).T.reshape(-1, 2)
    print(f"  peakfinder8: ours {t_a * 1e3:.1f} ms, OM {t_b * 1e3:.1f} ms, x{ratio:.1f} (target x3); "
          f"recall ours {match(ours_pos, truth, 1.5).mean():.3f} OM {match(om_pos, truth, 1.5).mean():.3f}; "
          f"OM's peaks found within 1 px {match(ours_pos, om_pos, 1.0).mean():.3f}", flush=True)

    disp = DispersionSpotFinder(SHAPE, warmup=(np.uint32,))
    t_d = statistics.median(timed(lambda: disp.find(image)) for _ in range(pairs))
    spots = disp.find(image)
    spot_pos = np.stack([spots["ss"], spots["fs"]], 1).astype(float)
    rows.append(("dispersion spots", t_d, float("nan"), float("nan"), "(no peer; SciPy ~1 s)", 2 * image.nbytes))
    print(f"  dispersion: {t_d * 1e3:.1f} ms, recall {match(spot_pos, truth, 1.5).mean():.3f}, "
          f"precision {match(truth, spot_pos, 1.5).mean():.3f}", flush=True)

    print()
    print(f"{'case':38s} {'ours ms':>8s} {'peer ms':>8s} {'speed-up':>9s} {'frames/s':>9s} {'BW limit/s':>10s} {'of limit':>8s}  peer")
    for name, t_a, t_b, ratio, peer, touched in rows:
        limit = bandwidth / touched  # every byte touched once, at the rate a copy moves bytes
        print(f"{name:38s} {t_a * 1e3:8.2f} {t_b * 1e3:8.2f} {ratio:9.1f} {1 / t_a:9.0f} {limit:10.0f} "
              f"{(1 / t_a) / limit:8.0%}  {peer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
