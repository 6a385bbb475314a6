"""peakfinder8 spot finding (Cheetah / OnDA algorithm) on any integer or float image.

Per frame: 5 iterations of outlier-trimmed radial statistics (parallel), a parallel pass for
seed pixels above ``max(adc_threshold, mean + min_snr * sigma)`` of their radius, then an
8-connected flood fill per seed with peakfinder8's acceptance tests (pixel count, local
background from a disc of ``2 * local_bg_radius``, SNR = background-subtracted total / local
sigma, maximum above the local background maximum, centroid inside the panel).

Thread-safety: a :class:`PeakFinder8` owns its work buffers; use one instance per thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from dranspose.kernels._parallel import pool_size

from dranspose.kernels import _pf8
from dranspose.kernels.geometry import Geometry

log = logging.getLogger(__name__)

PEAK_DTYPE = np.dtype(
    [
        ("fs", np.float32),  # centroid, fast-scan (column) coordinate in pixels
        ("ss", np.float32),  # centroid, slow-scan (row) coordinate in pixels
        ("intensity", np.float32),  # background-subtracted integrated intensity
        ("npix", np.int32),  # pixels in the peak
        ("max", np.float32),  # background-subtracted maximum
        ("snr", np.float32),  # signal-to-noise ratio
    ]
)
DEFAULT_WARMUP: tuple[DTypeLike, ...] = (np.uint16, np.uint32, np.float32)


def _as_flat_image(image: NDArray[Any], shape: tuple[int, int]) -> NDArray[Any]:
    arr = np.asarray(image)
    if arr.shape != shape:
        raise ValueError(f"image shape {arr.shape} != peak finder shape {shape}")
    if arr.dtype.kind not in "uif":
        raise TypeError(f"image dtype {arr.dtype} is not an integer or float type")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # documented copy for strided input
    return arr.reshape(-1)


class PeakFinder8:
    """peakfinder8 set up once for a detector: radius map, mask, panels and parameters.

    ``radius``: per-pixel distance from the beam centre in pixels (or give ``geometry`` and
    ``shape``); ``mask``: nonzero = bad pixel; pixels with radius outside
    ``[min_res, max_res]`` are ignored as in OnDA; ``asic_shape``: (rows, cols) of one panel
    (the image is a grid of panels; default: one panel). :meth:`find` returns a structured
    array of :data:`PEAK_DTYPE`, at most ``max_num_peaks`` rows, in OnDA's order.
    """

    def __init__(
        self,
        radius: NDArray[Any] | None = None,
        *,
        geometry: Geometry | None = None,
        shape: tuple[int, int] | None = None,
        mask: NDArray[Any] | None = None,
        adc_threshold: float = 0.0,
        min_snr: float = 5.0,
        min_pix_count: int = 2,
        max_pix_count: int = 20,
        local_bg_radius: int = 3,
        min_res: float = 0.0,
        max_res: float = float("inf"),
        max_num_peaks: int = 2048,
        asic_shape: tuple[int, int] | None = None,
        iterations: int = 5,
        warmup: Iterable[DTypeLike] = DEFAULT_WARMUP,
    ) -> None:
        if radius is None:
            if geometry is None or shape is None:
                raise ValueError("give a radius map, or a geometry and a shape")
            radius = geometry.radius_pixels(shape)
        radius = np.asarray(radius, dtype=np.float64)
        if radius.ndim != 2:
            raise ValueError(f"radius map must be 2D, got shape {radius.shape}")
        if not np.all(np.isfinite(radius)) or radius.min() < -0.5:
            raise ValueError("radius map must be finite and non-negative")
        self.shape = (int(radius.shape[0]), int(radius.shape[1]))
        ny, nx = asic_shape if asic_shape is not None else self.shape
        if ny <= 0 or nx <= 0 or self.shape[0] % ny or self.shape[1] % nx:
            raise ValueError(f"asic_shape {asic_shape} does not tile the image {self.shape}")
        self.asic_shape = (int(ny), int(nx))
        if min_pix_count < 1 or max_pix_count < min_pix_count:
            raise ValueError("need 1 <= min_pix_count <= max_pix_count")
        if local_bg_radius < 1 or max_num_peaks < 0 or iterations < 1:
            raise ValueError("local_bg_radius and iterations must be >= 1, max_num_peaks >= 0")
        self.adc_threshold = float(adc_threshold)
        self.min_snr = float(min_snr)
        self.min_pix_count = int(min_pix_count)
        self.max_pix_count = int(max_pix_count)
        self.local_bg_radius = int(local_bg_radius)
        self.max_num_peaks = int(max_num_peaks)
        self.iterations = int(iterations)

        rbin = np.rint(radius).astype(np.int32)
        good = (radius >= min_res) & (radius <= max_res)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.shape:
                raise ValueError(f"mask shape {mask.shape} != image shape {self.shape}")
            good &= mask == 0
        self._rcode = np.where(good, rbin, -1 - rbin).astype(np.int32).ravel()
        self.nbins = int(rbin.max()) + 1
        npix = self._rcode.size
        # blocks handed out dynamically to the threads (robust to a preempted thread)
        self._nchunks_max = max(1, min(npix // 32768, 8 * pool_size()))
        self._bin_start, self._chunk_start = self._sort_layout(self._rcode, self.nbins, self._nchunks_max)
        self._cursor = np.zeros((self._nchunks_max, self.nbins), dtype=np.int64)
        self._sorted = np.empty(int(self._bin_start[-1]), dtype=np.float32)
        self.roffset = np.zeros(self.nbins, dtype=np.float32)
        self.rsigma = np.zeros(self.nbins, dtype=np.float32)
        self.rthreshold = np.zeros(self.nbins, dtype=np.float32)
        self._cand = np.empty(npix, dtype=np.int32)
        self._counts = np.zeros(self._nchunks_max, dtype=np.int64)
        self._pixmap = np.zeros(npix, dtype=np.uint8)
        self._queue = np.empty(npix, dtype=np.int32)
        self._touched = np.empty(npix, dtype=np.int32)
        self._out = np.zeros((max(1, self.max_num_peaks), 8), dtype=np.float32)
        self._panels = (self.shape[0] // ny) * (self.shape[1] // nx)
        self.num_found = 0
        for dt in warmup:
            self.find(np.zeros(self.shape, dtype=dt))

    @staticmethod
    def _sort_layout(rcode: NDArray[np.int32], nbins: int, nchunks: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Offsets of each radius bin in the grouped buffer, and of each chunk within a bin."""
        usable = rcode[rcode >= 0]
        counts = np.bincount(usable, minlength=nbins).astype(np.int64)
        bin_start = np.zeros(nbins + 1, dtype=np.int64)
        np.cumsum(counts, out=bin_start[1:])
        step = (rcode.size + nchunks - 1) // nchunks
        chunk_start = np.empty((nchunks, nbins), dtype=np.int64)
        offset = bin_start[:-1].copy()
        for c in range(nchunks):
            chunk_start[c] = offset
            part = rcode[c * step:(c + 1) * step]
            offset = offset + np.bincount(part[part >= 0], minlength=nbins)
        return bin_start, chunk_start

    def _seeds(self, data: NDArray[Any], nchunks: int) -> NDArray[np.int32]:
        nchunks = max(1, min(nchunks, self._nchunks_max))
        width = self.shape[1]
        _pf8.candidates(
            data, self._rcode, self.rthreshold, width, self.asic_shape[0], self.asic_shape[1],
            nchunks, self._cand, self._counts,
        )
        step = (data.size + nchunks - 1) // nchunks
        parts = [self._cand[c * step: c * step + self._counts[c]] for c in range(nchunks)]
        seeds = parts[0] if nchunks == 1 else np.concatenate(parts)
        if self._panels > 1 and seeds.size:
            # OnDA visits panel by panel (row of panels, then column), each in row-major order
            ny, nx = self.asic_shape
            panel = (seeds // width // ny) * (width // nx) + (seeds % width) // nx
            seeds = seeds[np.argsort(panel, kind="stable")]
        return np.ascontiguousarray(seeds)

    def find(self, image: NDArray[Any]) -> NDArray[Any]:
        """Find the peaks of one frame; returns a new structured array of :data:`PEAK_DTYPE`.

        ``self.num_found`` is the number found before truncation to ``max_num_peaks``;
        ``self.rthreshold``/``self.roffset``/``self.rsigma`` hold the frame's radial statistics.
        """
        data = _as_flat_image(image, self.shape)
        nchunks = self._nchunks_max
        with numba.parallel_chunksize(1):  # a few large blocks, handed out dynamically
            _pf8.group_by_radius(data, self._rcode, self._chunk_start, self._cursor, self._sorted)
        with numba.parallel_chunksize(32):  # many small bins: hand them out 32 at a time
            _pf8.grouped_statistics(
                self._sorted, self._bin_start, self.iterations, self.min_snr, self.adc_threshold,
                self.roffset, self.rsigma, self.rthreshold,
            )
        with numba.parallel_chunksize(1):
            seeds = self._seeds(data, nchunks)
        found = _pf8.grow_and_measure(
            data, self._rcode, self.shape[1], self.asic_shape[0], self.asic_shape[1],
            self.roffset, self.rthreshold, seeds, self._pixmap, self._queue, self._touched,
            self.min_pix_count, self.max_pix_count, self.local_bg_radius, self.min_snr,
            self.max_num_peaks, self._out,
        )
        self.num_found = int(found)
        n = min(self.num_found, self.max_num_peaks)
        peaks = np.empty(n, dtype=PEAK_DTYPE)
        rows = self._out[:n]
        for i, name in enumerate(PEAK_DTYPE.names or ()):
            peaks[name] = rows[:, i]
        return peaks


def peakfinder8(
    image: NDArray[Any],
    radius: NDArray[Any] | None = None,
    mask: NDArray[Any] | None = None,
    **options: Any,
) -> NDArray[Any]:
    """One-shot peakfinder8: builds a :class:`PeakFinder8` and runs it on ``image``.

    Takes the same keywords as :class:`PeakFinder8` (``geometry=`` instead of ``radius``
    works too). For a stream of frames build a :class:`PeakFinder8` once instead.
    """
    options.setdefault("warmup", ())
    if radius is None and "geometry" in options:
        options.setdefault("shape", np.asarray(image).shape)
    return PeakFinder8(radius, mask=mask, **options).find(image)
