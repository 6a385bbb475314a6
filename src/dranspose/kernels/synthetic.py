"""Synthetic detector frames with known spots, for tests, benchmarks and demos."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def radius_map(shape: tuple[int, int], center: tuple[float, float]) -> NDArray[np.float32]:
    """Distance in pixels of every pixel centre from ``center`` = (row, col)."""
    yy, xx = np.indices(shape, dtype=np.float64)
    return np.hypot(yy - center[0], xx - center[1]).astype(np.float32)


def spot_frame(
    shape: tuple[int, int],
    n_spots: int,
    seed: int = 0,
    *,
    center: tuple[float, float] | None = None,
    background: float = 40.0,
    spot_sigma: float = 0.9,
    amplitude: tuple[float, float] = (150.0, 600.0),
    dtype: type = np.uint32,
) -> tuple[NDArray, NDArray[np.float64], NDArray[np.float32]]:  # type: ignore[type-arg]
    """A frame with Gaussian spots on a radially decaying background, Poisson noise.

    Returns (image, true spot positions [n, 2] as (ss, fs), radius map). Spots keep 12 px
    from the edges and from each other.
    """
    rng = np.random.default_rng(seed)
    if center is None:
        center = (shape[0] / 2 - 0.5, shape[1] / 2 - 0.5)
    r = radius_map(shape, center)
    rmax = float(r.max())
    bg = background * (0.3 + 0.7 * np.exp(-r / (0.4 * rmax))) + 5.0 * np.exp(-(((r - 0.3 * rmax) / 8.0) ** 2))
    img = bg.astype(np.float64)
    pos: list[tuple[float, float]] = []
    while len(pos) < n_spots:
        ss, fs = rng.uniform(12, shape[0] - 12), rng.uniform(12, shape[1] - 12)
        if all((ss - a) ** 2 + (fs - b) ** 2 > 24**2 for a, b in pos):
            pos.append((ss, fs))
    half = 5
    for ss, fs in pos:
        amp = rng.uniform(*amplitude)
        i0, j0 = int(ss) - half, int(fs) - half
        yy, xx = np.mgrid[i0 : i0 + 2 * half + 1, j0 : j0 + 2 * half + 1]
        # pixel centres at integer coordinates (the fs/ss convention of peakfinder8)
        img[i0 : i0 + 2 * half + 1, j0 : j0 + 2 * half + 1] += amp * np.exp(
            -((yy - ss) ** 2 + (xx - fs) ** 2) / (2 * spot_sigma**2)
        )
    image = rng.poisson(img).astype(dtype)
    return image, np.array(pos), r


def match(found_ss_fs: NDArray[np.float64], truth: NDArray[np.float64], tol: float) -> NDArray[np.bool_]:
    """For each true spot, whether some found spot lies within ``tol`` pixels."""
    if len(found_ss_fs) == 0:
        return np.zeros(len(truth), dtype=bool)
    d = np.hypot(truth[:, None, 0] - found_ss_fs[None, :, 0], truth[:, None, 1] - found_ss_fs[None, :, 1])
    return d.min(axis=1) <= tol
