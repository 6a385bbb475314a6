"""DIALS-style dispersion spot finding (Numba).

For every pixel, over the valid pixels of a ``(2k+1) x (2k+1)`` box: count ``n``, mean ``m``
and sample variance ``v`` (sliding sums, O(1) per pixel, parallel over row blocks). A pixel
is strong when ``n >= min_local``, the box is over-dispersed
``v / m > gain * (1 + sigma_background * sqrt(2 / (n - 1)))``, the pixel stands out
``I - m > sigma_strong * sqrt(gain * m)`` and ``I > global_threshold``. Strong pixels are
grouped into 8-connected spots; spots of ``min_spot_size..max_spot_size`` pixels are returned
as a structured array of :data:`~dranspose.kernels.peakfinder.PEAK_DTYPE`: centroid of the
background-subtracted intensity (fs, ss), intensity = sum(I - m), npix, max(I - m) and
snr = intensity / sqrt(sum(m)).

Thread-safety: a :class:`DispersionSpotFinder` owns its work buffers; one instance per thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import DTypeLike, NDArray

from dranspose.kernels._parallel import pool_size

from dranspose.kernels.peakfinder import PEAK_DTYPE, _as_flat_image

DEFAULT_WARMUP: tuple[DTypeLike, ...] = (np.uint16, np.uint32, np.float32)


@njit(cache=True, nogil=True)
def _add_row(
    row: NDArray,  # type: ignore[type-arg]
    good: NDArray[np.uint8],
    cn: NDArray[np.float64],
    cs: NDArray[np.float64],
    cs2: NDArray[np.float64],
    sign: float,
) -> None:
    """Add (sign 1) or remove (sign -1) one image row to the running column sums."""
    for c in range(row.shape[0]):
        if good[c]:
            v = np.float64(row[c])
            cn[c] += sign
            cs[c] += sign * v
            cs2[c] += sign * v * v


@njit(cache=True, nogil=True)
def _rows(
    data: NDArray,  # type: ignore[type-arg]
    good: NDArray[np.uint8],
    height: int,
    width: int,
    row0: int,
    row1: int,
    k: int,
    gain: float,
    nsig_b: float,
    nsig_s: float,
    min_local: int,
    threshold: float,
    strong: NDArray[np.uint8],
    bgmean: NDArray[np.float32],
    cand: NDArray[np.int32],
) -> int:
    """Classify rows ``row0..row1-1``; strong pixel indices go to ``cand[row0*width:]``."""
    cn = np.zeros(width, dtype=np.float64)
    cs = np.zeros(width, dtype=np.float64)
    cs2 = np.zeros(width, dtype=np.float64)
    # column sums over rows [row0 - k, row0 + k] (clipped to the image)
    for r in range(max(0, row0 - k), min(height, row0 + k + 1)):
        _add_row(data[r * width:(r + 1) * width], good[r * width:(r + 1) * width], cn, cs, cs2, 1.0)
    ncand = 0
    start = row0 * width
    for i in range(row0, row1):
        if i > row0:
            add = i + k
            sub = i - k - 1
            if add < height:
                _add_row(data[add * width:(add + 1) * width], good[add * width:(add + 1) * width], cn, cs, cs2, 1.0)
            if sub >= 0:
                _add_row(data[sub * width:(sub + 1) * width], good[sub * width:(sub + 1) * width], cn, cs, cs2, -1.0)
        n = 0.0
        s = 0.0
        s2 = 0.0
        for c in range(min(k, width)):
            n += cn[c]
            s += cs[c]
            s2 += cs2[c]
        base = i * width
        drow = data[base:base + width]
        grow = good[base:base + width]
        for j in range(width):
            if j + k < width:
                n += cn[j + k]
                s += cs[j + k]
                s2 += cs2[j + k]
            if j - k - 1 >= 0:
                n -= cn[j - k - 1]
                s -= cs[j - k - 1]
                s2 -= cs2[j - k - 1]
            if not grow[j] or n < min_local or n < 2.0:
                continue
            m = s / n
            if m <= 0.0:
                continue
            var = (s2 - s * m) / (n - 1.0)
            x = np.float64(drow[j])
            if x <= threshold or x - m <= nsig_s * math.sqrt(gain * m):
                continue
            if var / m > gain * (1.0 + nsig_b * math.sqrt(2.0 / (n - 1.0))):
                p = base + j
                strong[p] = 1
                bgmean[p] = np.float32(m)
                cand[start + ncand] = p
                ncand += 1
    return ncand


@njit(cache=True, nogil=True, parallel=True)
def _classify(
    data: NDArray,  # type: ignore[type-arg]
    good: NDArray[np.uint8],
    height: int,
    width: int,
    k: int,
    gain: float,
    nsig_b: float,
    nsig_s: float,
    min_local: int,
    threshold: float,
    nchunks: int,
    strong: NDArray[np.uint8],
    bgmean: NDArray[np.float32],
    cand: NDArray[np.int32],
    counts: NDArray[np.int64],
) -> None:
    step = (height + nchunks - 1) // nchunks
    for c in prange(nchunks):
        r0 = min(height, c * step)
        r1 = min(height, (c + 1) * step)
        counts[c] = _rows(
            data, good, height, width, r0, r1, k, gain, nsig_b, nsig_s, min_local, threshold,
            strong, bgmean, cand,
        )


@njit(cache=True, nogil=True)
def _spots(
    data: NDArray,  # type: ignore[type-arg]
    width: int,
    height: int,
    seeds: NDArray[np.int32],
    strong: NDArray[np.uint8],
    bgmean: NDArray[np.float32],
    queue: NDArray[np.int32],
    min_size: int,
    max_size: int,
    max_num: int,
    out: NDArray[np.float32],
) -> int:
    """Label 8-connected strong pixels from ``seeds``; clears ``strong`` as it goes."""
    nfound = 0
    for si in range(seeds.shape[0]):
        seed = seeds[si]
        if strong[seed] != 1:
            continue
        strong[seed] = 2
        queue[0] = seed
        n = 1
        head = 0
        tot = 0.0
        bg = 0.0
        wfs = 0.0
        wss = 0.0
        pmax = -np.inf
        while head < n:
            p = queue[head]
            head += 1
            pss = p // width
            pfs = p - pss * width
            sig = np.float64(data[p]) - bgmean[p]
            tot += sig
            bg += bgmean[p]
            wfs += sig * pfs
            wss += sig * pss
            if sig > pmax:
                pmax = sig
            for dss in range(-1, 2):
                qss = pss + dss
                if qss < 0 or qss >= height:
                    continue
                for dfs in range(-1, 2):
                    qfs = pfs + dfs
                    if qfs < 0 or qfs >= width:
                        continue
                    q = qss * width + qfs
                    if strong[q] == 1:
                        strong[q] = 2
                        queue[n] = q
                        n += 1
        for i in range(n):
            strong[queue[i]] = 0
        if n < min_size or n > max_size or tot <= 0.0:
            continue
        if nfound < max_num:
            out[nfound, 0] = wfs / tot
            out[nfound, 1] = wss / tot
            out[nfound, 2] = tot
            out[nfound, 3] = n
            out[nfound, 4] = pmax
            out[nfound, 5] = tot / math.sqrt(bg) if bg > 0.0 else 0.0
        nfound += 1
    return nfound


class DispersionSpotFinder:
    """Dispersion spot finder set up once for a detector shape and mask (nonzero = bad).

    ``kernel_size`` is the half width k of the box; defaults follow DIALS.
    ``strong_pixels(image)`` exposes the per-pixel classification for inspection.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        *,
        mask: NDArray[Any] | None = None,
        kernel_size: int = 3,
        gain: float = 1.0,
        sigma_background: float = 6.0,
        sigma_strong: float = 3.0,
        min_local: int = 2,
        global_threshold: float = 0.0,
        min_spot_size: int = 2,
        max_spot_size: int = 1000,
        max_num_peaks: int = 2048,
        warmup: Iterable[DTypeLike] = DEFAULT_WARMUP,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise ValueError(f"shape must be positive, got {shape}")
        if kernel_size < 1 or gain <= 0 or min_spot_size < 1 or max_spot_size < min_spot_size:
            raise ValueError("need kernel_size >= 1, gain > 0, 1 <= min_spot_size <= max_spot_size")
        self.kernel_size = int(kernel_size)
        self.gain = float(gain)
        self.sigma_background = float(sigma_background)
        self.sigma_strong = float(sigma_strong)
        self.min_local = int(min_local)
        self.global_threshold = float(global_threshold)
        self.min_spot_size = int(min_spot_size)
        self.max_spot_size = int(max_spot_size)
        self.max_num_peaks = int(max_num_peaks)
        good = np.ones(self.shape, dtype=np.uint8)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.shape:
                raise ValueError(f"mask shape {mask.shape} != image shape {self.shape}")
            good[mask != 0] = 0
        self._good = good.ravel()
        npix = self._good.size
        # row blocks handed out dynamically to the threads (robust to a preempted thread)
        self._nchunks_max = max(1, min(self.shape[0] // 64, 8 * pool_size()))
        self._strong = np.zeros(npix, dtype=np.uint8)
        self._bgmean = np.zeros(npix, dtype=np.float32)
        self._cand = np.empty(npix, dtype=np.int32)
        self._queue = np.empty(npix, dtype=np.int32)
        self._counts = np.zeros(self._nchunks_max, dtype=np.int64)
        self._out = np.zeros((max(1, self.max_num_peaks), 6), dtype=np.float32)
        self.num_found = 0
        for dt in warmup:
            self.find(np.zeros(self.shape, dtype=dt))

    def strong_pixels(self, image: NDArray[Any]) -> NDArray[np.bool_]:
        """Boolean map of the strong pixels of one frame (a new array)."""
        data = _as_flat_image(image, self.shape)
        height, width = self.shape
        nchunks = max(1, min(self._nchunks_max, height))
        with numba.parallel_chunksize(1):
            _classify(
                data, self._good, height, width, self.kernel_size, self.gain, self.sigma_background,
                self.sigma_strong, self.min_local, self.global_threshold, nchunks, self._strong,
                self._bgmean, self._cand, self._counts,
            )
        result = self._strong.reshape(self.shape) != 0
        self._strong[:] = 0
        return result

    def find(self, image: NDArray[Any]) -> NDArray[Any]:
        """Spots of one frame as a new structured array of ``PEAK_DTYPE`` (row-major order)."""
        data = _as_flat_image(image, self.shape)
        height, width = self.shape
        nchunks = max(1, min(self._nchunks_max, height))
        with numba.parallel_chunksize(1):
            _classify(
                data, self._good, height, width, self.kernel_size, self.gain, self.sigma_background,
                self.sigma_strong, self.min_local, self.global_threshold, nchunks, self._strong,
                self._bgmean, self._cand, self._counts,
            )
        step = (height + nchunks - 1) // nchunks
        parts = [
            self._cand[min(height, c * step) * width: min(height, c * step) * width + self._counts[c]]
            for c in range(nchunks)
        ]
        seeds = np.ascontiguousarray(np.concatenate(parts)) if nchunks > 1 else parts[0]
        found = _spots(
            data, width, height, seeds, self._strong, self._bgmean, self._queue,
            self.min_spot_size, self.max_spot_size, self.max_num_peaks, self._out,
        )
        self.num_found = int(found)
        n = min(self.num_found, self.max_num_peaks)
        peaks = np.empty(n, dtype=PEAK_DTYPE)
        for i, name in enumerate(PEAK_DTYPE.names or ()):
            peaks[name] = self._out[:n, i]
        return peaks


def find_spots_dispersion(image: NDArray[Any], mask: NDArray[Any] | None = None, **options: Any) -> NDArray[Any]:
    """One-shot dispersion spot finding (keywords of :class:`DispersionSpotFinder`).

    For a stream of frames build a :class:`DispersionSpotFinder` once instead.
    """
    options.setdefault("warmup", ())
    return DispersionSpotFinder(np.asarray(image).shape, mask=mask, **options).find(image)
