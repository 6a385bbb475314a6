"""Azimuthal integration: geometry lookup built once, one tight parallel pass per frame.

Binning and corrections follow pyFAI's "ng" CSR integrators (``("no"|"bbox", "csr",
"cython")``) so results agree with pyFAI to float rounding when the same geometry, bins and
ranges are used (see ``tests/kernels``).

Thread-safety: an :class:`AzimuthalIntegrator` owns scratch buffers reused by every call;
use one instance per thread (dranspose workers are single-threaded per process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from dranspose.kernels import _hist, _lut
from dranspose.kernels._parallel import pool_size
from dranspose.kernels.geometry import Geometry
from dranspose.kernels.units import CHI_DEG, Unit, center_and_delta, to_unit

log = logging.getLogger(__name__)

EPS32 = 1.0 + float(np.finfo(np.float32).eps)
PI32 = float(np.float32(np.pi))
ERROR_MODELS = {None: 0, "none": 0, "variance": 1, "poisson": 2}
DEFAULT_WARMUP: tuple[DTypeLike, ...] = (np.uint16, np.uint32, np.float32)


def _upper_bound(value: float) -> float:
    """pyFAI's ``calc_upper_bound``: stretch the top of a range by one float32 epsilon."""
    return value * EPS32 if value > 0 else value / EPS32


def _range(
    user: tuple[float, float] | None, scale: float, center: NDArray[np.float64],
    delta: NDArray[np.float64] | None, valid: NDArray[np.bool_], positive: bool,
) -> tuple[float, float]:
    """(min, max-in) in internal units: the user's range / scale, or the data's extent."""
    if user is not None:
        lo, hi = float(user[0]) / scale, float(user[-1]) / scale
        return min(lo, hi), max(lo, hi)
    c = center[valid]
    if c.size == 0:
        raise ValueError("no valid pixel: cannot derive a range from the data")
    d = delta[valid] if delta is not None else 0.0
    lo, hi = float(np.min(c - d)), float(np.max(c + d))
    if positive:
        lo, hi = max(0.0, lo), max(0.0, hi)
    return lo, hi


class AzimuthalIntegrator:
    """pyFAI-like azimuthal integrator for one detector shape, set of bins and corrections.

    Parameters mirror pyFAI: ``npt`` radial bins in ``unit`` (``q_nm^-1``, ``q_A^-1``,
    ``2th_deg``, ``2th_rad``, ``r_mm``, ``r_m``); ``npt_azim`` azimuthal bins for 2D (cake)
    integration; ``radial_range`` in ``unit`` and ``azimuth_range`` in degrees (pass them
    explicitly to compare with pyFAI); ``mask`` nonzero = excluded; ``solid_angle``,
    ``polarization_factor`` (pyFAI's f in [-1, 1]) and ``flat`` divide the signal;
    ``dummy``/``delta_dummy`` reject pixels per frame; ``empty`` fills bins without pixels
    (0.0 by default, as pyFAI's ng integrators do even when a dummy is given); ``splitting``
    ``"none"`` or ``"bbox"``; ``error_model`` ``None``, ``"poisson"`` (var = max(1, I)) or
    ``"variance"`` (a variance array per frame).

    Construction precomputes the pixel -> bin map and per-bin normalisation and compiles (or
    loads from the Numba cache) the kernels for the ``warmup`` dtypes by running them once,
    so the first frame is as fast as the others. Any other integer or float dtype works too
    (compiled on first use). Input images are read in place, without a conversion copy, when
    C-contiguous in native byte order.
    """

    _ptr: NDArray[np.int64] | NDArray[np.int32]
    _bins: NDArray[np.int32]
    _coefs: NDArray[np.float32]
    _nbins: int
    azimuthal: NDArray[np.float64] | None
    last_sigma: NDArray[Any] | None = None

    def __init__(
        self,
        geometry: Geometry,
        shape: tuple[int, int],
        npt: int,
        unit: str | Unit = "q_nm^-1",
        *,
        npt_azim: int | None = None,
        radial_range: tuple[float, float] | None = None,
        azimuth_range: tuple[float, float] | None = None,
        mask: NDArray[Any] | None = None,
        solid_angle: bool = True,
        polarization_factor: float | None = None,
        flat: NDArray[Any] | None = None,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        empty: float = 0.0,
        splitting: str = "none",
        error_model: str | None = None,
        warmup: Iterable[DTypeLike] = DEFAULT_WARMUP,
    ) -> None:
        t0 = time.perf_counter()
        self.geometry = geometry
        self.shape = (int(shape[0]), int(shape[1]))
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise ValueError(f"shape must be positive, got {shape}")
        if int(npt) <= 0 or (npt_azim is not None and int(npt_azim) <= 0):
            raise ValueError(f"npt and npt_azim must be positive, got {npt}, {npt_azim}")
        self.npt = int(npt)
        self.npt_azim = None if npt_azim is None else int(npt_azim)
        self.unit = to_unit(unit)
        if splitting in ("none", "no"):
            split = False
        elif splitting == "bbox":
            split = True
        else:
            raise ValueError(f"splitting must be 'none' or 'bbox', got {splitting!r}")
        self.splitting = "bbox" if split else "none"
        if error_model not in ERROR_MODELS:
            raise ValueError(f"error_model must be None, 'poisson' or 'variance', got {error_model!r}")
        self.error_model = error_model if error_model != "none" else None
        self._error_code = ERROR_MODELS[error_model]
        self.dummy = dummy
        self.delta_dummy = 0.0 if delta_dummy is None else float(delta_dummy)
        self.empty = float(empty)

        valid, pixnorm = self._pixel_norm(mask, solid_angle, polarization_factor, flat)
        self._build_map(valid, split, radial_range, azimuth_range)
        self._pixnorm = pixnorm.ravel()
        self._static_norm, self._static_count = _hist.static_sums(
            self._ptr, self._bins, self._coefs, self._pixnorm, self._nbins  # type: ignore[arg-type]
        )
        counts = np.diff(self._ptr)
        self._layout = "csr"
        if bool(np.all(counts <= 1)) and bool(np.all(self._coefs == 1.0)):
            self._layout = "single"
            index = np.full(counts.size, -1, dtype=np.int32)
            has = counts == 1
            index[has] = self._bins[self._ptr[:-1][has]]
            self._index = index
        elif self.npt_azim is None and int(counts.max(initial=0)) <= 4 and self._runs_adjacent(counts):
            self._layout = "run"
        elif self.npt_azim is not None and _lut.group_shift(self._nbins) > 0:
            # cake with split pixels: regroup by footprint (fixed trip counts, no per-pixel branch)
            self._layout = "grouped"
            self._group_shift = _lut.group_shift(self._nbins)
            self._grouped = _lut.group_2d(self._ptr, self._bins, self._coefs, self.npt, self._group_shift)
        if self._layout == "csr" and self._bins.size < 2**31 - 1:
            self._ptr = self._ptr.astype(np.int32)  # 4 bytes less per pixel and frame
        if self._layout != "csr":  # the compact layouts replace the general map
            self._ptr = np.zeros(0, dtype=np.int64)
            self._bins = np.zeros(0, dtype=np.int32)
            self._coefs = np.zeros(0, dtype=np.float32)
        # one private histogram per thread of Numba's pool (indexed by numba.get_thread_id())
        self._acc = np.zeros((pool_size(), 4, self._nbins + 4), dtype=np.float64)
        self._last_dynamic = False
        self._no_variance = np.zeros(1, dtype=np.float32)
        zero_var = np.zeros(self.shape, dtype=np.float32) if self._error_code == 1 else None
        for dt in warmup:  # compile (or load from the cache) the whole per-frame path now
            self._integrate(np.zeros(self.shape, dtype=dt), zero_var, None, None)
        log.debug("integrator %s built in %.3f s", self, time.perf_counter() - t0)

    # ------------------------------------------------------------------ construction
    def _pixel_norm(
        self, mask: NDArray[Any] | None, solid_angle: bool, polarization_factor: float | None,
        flat: NDArray[Any] | None,
    ) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
        """Valid pixels and the per-pixel float32 normalisation flat * polarization * solid angle."""
        norm = np.ones(self.shape, dtype=np.float32)
        if flat is not None:
            flat = np.asarray(flat)
            if flat.shape != self.shape:
                raise ValueError(f"flat shape {flat.shape} != detector shape {self.shape}")
            norm *= flat.astype(np.float32)
        if polarization_factor is not None:
            norm *= self.geometry.polarization(self.shape, polarization_factor).astype(np.float32)
        if solid_angle:
            norm *= self.geometry.solid_angle(self.shape).astype(np.float32)
        valid = np.isfinite(norm) & (norm != 0)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.shape:
                raise ValueError(f"mask shape {mask.shape} != detector shape {self.shape}")
            valid &= mask == 0
        return valid, norm

    def _build_map(
        self, valid: NDArray[np.bool_], split: bool,
        radial_range: tuple[float, float] | None, azimuth_range: tuple[float, float] | None,
    ) -> None:
        two_d = self.npt_azim is not None
        need_chi = two_d or azimuth_range is not None
        pos0, dpos0 = center_and_delta(self.geometry, self.shape, self.unit.space, split)
        if dpos0 is None:
            dpos0 = np.zeros(self.shape)
        pos1, dpos1 = (np.zeros(1), None)
        if need_chi:
            pos1, dpos1 = center_and_delta(self.geometry, self.shape, "chi", split)
        if dpos1 is None:
            dpos1 = np.zeros(pos1.shape)
        valid &= np.isfinite(pos0) & np.isfinite(dpos0)
        # pyFAI derives default ranges from unmasked pixels only
        lo0, hi0 = _range(radial_range, self.unit.scale, pos0, dpos0 if split else None, valid, True)
        self._pos0_min, self._pos0_max = lo0, _upper_bound(hi0)
        self._delta0 = (self._pos0_max - self._pos0_min) / self.npt
        flat = lambda a: np.ascontiguousarray(a, dtype=np.float64).ravel()  # noqa: E731
        if two_d:
            assert self.npt_azim is not None
            lo1, hi1 = _range(azimuth_range, CHI_DEG.scale, pos1, dpos1 if split else None, valid, False)
            if azimuth_range is None:  # pyFAI clips the data range to +-pi (pi in float32)
                lo1, hi1 = max(lo1, -PI32), min(hi1, PI32)
            self._pos1_min, self._pos1_max = lo1, _upper_bound(hi1)
            self._delta1 = (self._pos1_max - self._pos1_min) / self.npt_azim
            self._ptr, self._bins, self._coefs = _lut.build_map_2d(
                flat(pos0), flat(dpos0), flat(pos1), flat(dpos1), valid.ravel(),
                self._pos0_min, self._delta0, self.npt, self._pos1_min, self._delta1, self.npt_azim,
            )
            self._nbins = self.npt * self.npt_azim
        else:
            check = azimuth_range is not None
            lo1 = hi1 = 0.0
            if check:
                assert azimuth_range is not None
                lo1, hi1 = sorted((azimuth_range[0] / CHI_DEG.scale, azimuth_range[-1] / CHI_DEG.scale))
            p1 = flat(pos1) if check else np.zeros(1)
            d1 = flat(dpos1) if check else np.zeros(1)
            self._ptr, self._bins, self._coefs = _lut.build_map_1d(
                flat(pos0), flat(dpos0), p1, d1, valid.ravel(),
                self._pos0_min, self._delta0, self.npt, check, lo1, hi1,
            )
            self._nbins = self.npt
        d = self._delta0
        self.radial = np.linspace(self._pos0_min + 0.5 * d, self._pos0_max - 0.5 * d, self.npt) * self.unit.scale
        if two_d:
            d = self._delta1
            assert self.npt_azim is not None
            self.azimuthal = (
                np.linspace(self._pos1_min + 0.5 * d, self._pos1_max - 0.5 * d, self.npt_azim) * CHI_DEG.scale
            )
        else:
            self.azimuthal = None

    def _runs_adjacent(self, counts: NDArray[np.int64]) -> bool:
        """Convert a map whose pixels cover runs of <= 4 adjacent bins to the compact run
        layout (bin0, weights[npix, K]): 4 + 4K bytes per pixel instead of 8 + 8 per entry.
        Same float32 weights, so the same sums."""
        width = int(counts.max(initial=1))
        first = self._ptr[:-1]
        bin0 = np.full(counts.size, -1, dtype=np.int32)
        weights = np.zeros((counts.size, width), dtype=np.float32)
        used = counts > 0
        bin0[used] = self._bins[first[used]]
        for k in range(width):
            has = counts > k
            if k and np.any(self._bins[first[has] + k] != bin0[has] + k):
                return False
            weights[has, k] = self._coefs[first[has] + k]
        self._run_map = (bin0, weights)
        return True

    # ------------------------------------------------------------------ per frame
    def _flat_input(self, image: NDArray[Any], name: str) -> NDArray[Any]:
        arr = np.asarray(image)
        if arr.shape != self.shape:
            raise ValueError(f"{name} shape {arr.shape} != integrator shape {self.shape}")
        if arr.dtype.kind not in "uif":
            raise TypeError(f"{name} dtype {arr.dtype} is not an integer or float type")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)  # documented copy for strided input
        return arr.reshape(-1)

    def _run(self, image: NDArray[Any], variance: NDArray[Any] | None) -> tuple[int, bool]:
        """Scatter one frame into the per-thread histograms; returns (rows to merge, dynamic norm)."""
        data = self._flat_input(image, "image")
        code = self._error_code
        var = self._no_variance
        if code == 1:
            if variance is None:
                raise ValueError("error_model='variance' needs a variance array per frame")
            var = np.ascontiguousarray(self._flat_input(variance, "variance"), dtype=np.float32)
        dynamic = self.dummy is not None or data.dtype.kind == "f"
        nthreads = numba.get_num_threads()
        nblocks = max(1, min(data.size // 32768, 8 * nthreads))
        dummy = 0.0 if self.dummy is None else float(self.dummy)
        args = (self._pixnorm, self._acc, nblocks, dynamic, code, self.dummy is not None, dummy, self.delta_dummy)
        with numba.parallel_chunksize(1):  # dynamic hand-out of the blocks
            if self._layout == "single":
                _hist.scatter_single(data, var, self._index, *args)  # type: ignore[arg-type]
            elif self._layout == "run":
                _hist.scatter_run(data, var, *self._run_map, *args)  # type: ignore[arg-type]
            elif self._layout == "grouped":
                _hist.scatter_grouped(data, var, self._grouped, self._group_shift, self.npt, *args)  # type: ignore[arg-type]
            else:
                _hist.scatter_multi(data, var, self._ptr, self._bins, self._coefs, *args)  # type: ignore[arg-type]
        return self._acc.shape[0], dynamic

    def _outputs(
        self, out: NDArray[Any] | None, sigma_out: NDArray[Any] | None,
    ) -> tuple[NDArray[Any], NDArray[Any] | None]:
        for name, arr in (("out", out), ("sigma_out", sigma_out)):
            if arr is None:
                continue
            if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.dtype.kind == "f"):
                raise ValueError(f"{name} must be a C-contiguous float array")
            if arr.size != self._nbins:
                raise ValueError(f"{name} has {arr.size} elements, need {self._nbins}")
        intensity = np.empty(self._nbins, dtype=np.float64) if out is None else out
        sigma: NDArray[Any] | None = None
        if self._error_code:
            sigma = np.empty(self._nbins, dtype=np.float64) if sigma_out is None else sigma_out
        return intensity, sigma

    def _integrate(
        self, image: NDArray[Any], variance: NDArray[Any] | None, out: NDArray[Any] | None,
        sigma_out: NDArray[Any] | None,
    ) -> tuple[NDArray[Any], NDArray[Any] | None]:
        intensity, sigma = self._outputs(out, sigma_out)
        nchunks, dynamic = self._run(image, variance)
        _hist.finalize(
            self._acc, nchunks, self._static_norm, self._static_count, dynamic, self._error_code,
            self.empty, intensity.reshape(-1), (intensity if sigma is None else sigma).reshape(-1),
        )
        self._last_dynamic = dynamic
        return intensity, sigma

    def integrate1d(
        self, image: NDArray[Any], *, variance: NDArray[Any] | None = None,
        out: NDArray[Any] | None = None, sigma_out: NDArray[Any] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[Any], NDArray[Any] | None]:
        """Integrate one frame: ``(radial, intensity, sigma)``; sigma is None without an error model.

        ``out``/``sigma_out``: optional preallocated float arrays of ``npt`` elements, filled
        and returned. ``radial`` is shared by all calls (do not modify it).
        """
        if self.npt_azim is not None:
            raise ValueError("this integrator was built for 2D (npt_azim given): use integrate2d")
        intensity, sigma = self._integrate(image, variance, out, sigma_out)
        return self.radial, intensity, sigma

    def integrate2d(
        self, image: NDArray[Any], *, variance: NDArray[Any] | None = None,
        out: NDArray[Any] | None = None, sigma_out: NDArray[Any] | None = None,
    ) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.float64]]:
        """Cake integration: ``(intensity[npt_azim, npt], radial, azimuthal_deg)``.

        With an error model the sigma array of the same shape is ``self.last_sigma``
        (or ``sigma_out`` when given).
        """
        if self.npt_azim is None or self.azimuthal is None:
            raise ValueError("this integrator was built for 1D: pass npt_azim to build a 2D one")
        intensity, sigma = self._integrate(image, variance, out, sigma_out)
        shape2d = (self.npt_azim, self.npt)
        self.last_sigma = None if sigma is None else sigma.reshape(shape2d)
        return intensity.reshape(shape2d), self.radial, self.azimuthal

    @property
    def sums(self) -> NDArray[np.float64]:
        """Per-bin (signal, variance, norm, count) of the last frame, shape (4, nbins) (a new
        array; the variance row is zero without an error model)."""
        merged = self._acc[:, :, : self._nbins].sum(axis=0)
        if not self._error_code:
            merged[1] = 0.0
        if not self._last_dynamic:
            merged[2] = self._static_norm
            merged[3] = self._static_count
        return merged

    @property
    def nbytes_touched(self) -> int:
        """Bytes of lookup data read per frame (excluding the image itself)."""
        if self._layout == "single":
            return int(self._index.nbytes)
        if self._layout == "run":
            return int(sum(a.nbytes for a in self._run_map))
        if self._layout == "grouped":
            return int(sum(a.nbytes for a in self._grouped))
        return int(self._ptr.nbytes + self._bins.nbytes + self._coefs.nbytes)

    def __repr__(self) -> str:
        kind = f"{self.npt}x{self.npt_azim}" if self.npt_azim else f"{self.npt}"
        return f"AzimuthalIntegrator(shape={self.shape}, bins={kind}, unit={self.unit.name}, splitting={self.splitting})"
