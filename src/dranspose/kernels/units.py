"""Radial and azimuthal units, with pyFAI's names, internal spaces and scales.

A unit's positions are computed in an internal "space" (q in nm^-1, 2theta in radians,
r in metres, chi in radians) and multiplied by ``scale`` for the user. Ranges given by
the user are divided by ``scale`` (as pyFAI does), so both agree on every bin edge.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from dranspose.kernels.geometry import Geometry


@dataclasses.dataclass(frozen=True)
class Unit:
    name: str
    space: str  # "q", "2th", "r", "chi"
    scale: float


RADIAL_UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("q_nm^-1", "q", 1.0),
        Unit("q_A^-1", "q", 0.1),
        Unit("2th_deg", "2th", 180.0 / math.pi),
        Unit("2th_rad", "2th", 1.0),
        Unit("r_mm", "r", 1000.0),
        Unit("r_m", "r", 1.0),
    )
}
CHI_DEG = Unit("chi_deg", "chi", 180.0 / math.pi)


def to_unit(unit: str | Unit) -> Unit:
    """Look a radial unit up by its pyFAI name (``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``r_mm``...)."""
    if isinstance(unit, Unit):
        return unit
    try:
        return RADIAL_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown radial unit {unit!r}; known: {', '.join(RADIAL_UNITS)}") from None


def space_values(
    space: str,
    geometry: Geometry,
    t1: NDArray[np.float64],
    t2: NDArray[np.float64],
    t3: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Positions in the internal ``space`` for sample-to-point vectors (float64)."""
    if space == "chi":
        return np.arctan2(t1, t2)
    if space == "r":
        return np.sqrt(t1 * t1 + t2 * t2)
    tth = np.arctan2(np.sqrt(t1 * t1 + t2 * t2), t3)
    if space == "2th":
        return tth
    if space == "q":
        if geometry.wavelength is None:
            raise ValueError("q units need the geometry's wavelength")
        return 4.0e-9 * np.pi * np.sin(tth / 2.0) / geometry.wavelength
    raise ValueError(f"unknown space {space!r}")


def center_and_delta(
    geometry: Geometry, shape: tuple[int, int], space: str, with_delta: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Pixel-centre positions and (optionally) bounding-box half widths in ``space``.

    The half width is the largest distance between the centre and the 4 corners, the corners
    rounded to float32 first (pyFAI stores corners in float32); for chi the distance is taken
    modulo 2pi.
    """
    center = space_values(space, geometry, *geometry.t_centers(shape))
    if not with_delta:
        return center, None
    grid = space_values(space, geometry, *geometry.t_corners(shape)).astype(np.float32)
    delta = np.zeros(shape, dtype=np.float64)
    for corner in (grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]):
        d = np.abs(corner - center)
        if space == "chi":
            np.minimum(d, 2.0 * np.pi - d, out=d)
        np.maximum(delta, d, out=delta)
    return center, delta
