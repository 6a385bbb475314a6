"""Detector geometry in pyFAI's conventions, and PONI files read without pyFAI.

Axis 1 is the slow axis (rows), axis 2 the fast axis (columns). Distances are metres, angles
radians. Pixel (i, j) has its centre at ``((i + 0.5) * pixel1, (j + 0.5) * pixel2)`` on the
detector plane; the PONI is the foot of the normal from the sample. All positions are
computed in float64 with the same formulas as pyFAI, so that bin assignments agree.

A :class:`Geometry` is immutable and thread-safe; its array methods allocate new arrays.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Pixel sizes (pixel1, pixel2) in metres of detector families, for PONI files whose
# Detector_config does not state them. Matched on the lower-cased name prefix.
_KNOWN_PIXELS: tuple[tuple[str, float], ...] = (
    ("eiger", 75e-6),
    ("jungfrau", 75e-6),
    ("pilatus", 172e-6),
    ("maxipix", 55e-6),
    ("lambda", 55e-6),
    ("mythen", 50e-6),
)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Sample-detector geometry (the fields of a PONI file).

    ``dist``, ``poni1``, ``poni2``, ``pixel1``, ``pixel2`` in metres; ``rot1..3`` in radians;
    ``wavelength`` in metres (needed only for q units). ``max_shape`` is the detector's
    (rows, columns) when known.
    """

    dist: float
    poni1: float
    poni2: float
    rot1: float = 0.0
    rot2: float = 0.0
    rot3: float = 0.0
    wavelength: float | None = None
    pixel1: float = 75e-6
    pixel2: float = 75e-6
    max_shape: tuple[int, int] | None = None
    detector: str | None = None

    def __post_init__(self) -> None:
        for name in ("dist", "pixel1", "pixel2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Geometry.{name} must be a positive finite number, got {value!r}")
        for name in ("poni1", "poni2", "rot1", "rot2", "rot3"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"Geometry.{name} must be a finite number, got {value!r}")
        if self.wavelength is not None and not (self.wavelength > 0 and math.isfinite(self.wavelength)):
            raise ValueError(f"Geometry.wavelength must be positive, got {self.wavelength!r}")

    # ------------------------------------------------------------------ PONI files
    @classmethod
    def from_poni(cls, path: str | os.PathLike[str]) -> "Geometry":
        """Read a pyFAI PONI file (version 1 or 2). Raises ``ValueError`` naming the file."""
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            return cls.from_poni_text(text)
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from exc

    @classmethod
    def from_poni_text(cls, text: str) -> "Geometry":
        """Parse the content of a PONI file (``key: value`` lines, ``#`` comments)."""
        return cls(**parse_poni(text))

    def to_poni_text(self) -> str:
        """A PONI version 2 text for this geometry (readable by pyFAI and by ``from_poni``)."""
        config: dict[str, Any] = {"pixel1": self.pixel1, "pixel2": self.pixel2}
        if self.max_shape is not None:
            config["max_shape"] = list(self.max_shape)
        lines = [
            "# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis",
            "poni_version: 2",
            "Detector: Detector",
            f"Detector_config: {json.dumps(config)}",
            f"Distance: {self.dist!r}",
            f"Poni1: {self.poni1!r}",
            f"Poni2: {self.poni2!r}",
            f"Rot1: {self.rot1!r}",
            f"Rot2: {self.rot2!r}",
            f"Rot3: {self.rot3!r}",
        ]
        if self.wavelength is not None:
            lines.append(f"Wavelength: {self.wavelength!r}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ positions
    def _rotation(self) -> tuple[float, ...]:
        c1, c2, c3 = math.cos(self.rot1), math.cos(self.rot2), math.cos(self.rot3)
        s1, s2, s3 = math.sin(self.rot1), math.sin(self.rot2), math.sin(self.rot3)
        return c1, c2, c3, s1, s2, s3

    def _t_vectors(
        self, d1: NDArray[np.float64], d2: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Sample-to-point vectors (t1, t2, t3) for detector positions in pixel units."""
        c1, c2, c3, s1, s2, s3 = self._rotation()
        p1 = d1 * self.pixel1 - self.poni1
        p2 = d2 * self.pixel2 - self.poni2
        L = self.dist
        t1 = p1 * c2 * c3 + p2 * (c3 * s1 * s2 - c1 * s3) - L * (c1 * c3 * s2 + s1 * s3)
        t2 = p1 * c2 * s3 + p2 * (c1 * c3 + s1 * s2 * s3) - L * (-c3 * s1 + c1 * s2 * s3)
        t3 = p1 * s2 - p2 * c2 * s1 + L * c1 * c2
        return t1, t2, t3

    def t_centers(self, shape: tuple[int, int]) -> tuple[NDArray[np.float64], ...]:
        """(t1, t2, t3) of every pixel centre, each of ``shape``."""
        d1 = np.arange(shape[0], dtype=np.float64)[:, None] + 0.5
        d2 = np.arange(shape[1], dtype=np.float64)[None, :] + 0.5
        t1, t2, t3 = self._t_vectors(d1, d2)
        return tuple(np.ascontiguousarray(np.broadcast_to(t, shape)) for t in (t1, t2, t3))

    def t_corners(self, shape: tuple[int, int]) -> tuple[NDArray[np.float64], ...]:
        """(t1, t2, t3) of the pixel corner grid, each of shape ``(rows + 1, cols + 1)``."""
        d1 = np.arange(shape[0] + 1, dtype=np.float64)[:, None]
        d2 = np.arange(shape[1] + 1, dtype=np.float64)[None, :]
        grid = (shape[0] + 1, shape[1] + 1)
        t1, t2, t3 = self._t_vectors(d1, d2)
        return tuple(np.ascontiguousarray(np.broadcast_to(t, grid)) for t in (t1, t2, t3))

    def tth(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Scattering angle 2theta (radians) of every pixel centre."""
        t1, t2, t3 = self.t_centers(shape)
        return np.arctan2(np.sqrt(t1 * t1 + t2 * t2), t3)

    def chi(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Azimuthal angle chi (radians, in [-pi, pi]) of every pixel centre."""
        t1, t2, _ = self.t_centers(shape)
        return np.arctan2(t1, t2)

    def radius_pixels(self, shape: tuple[int, int]) -> NDArray[np.float32]:
        """Ring radius of every pixel in pixels: ``dist * tan(2theta) / pixel``.

        Equals the distance from the PONI for an untilted detector and is constant on
        Debye-Scherrer rings for a tilted one. Used by peakfinder8's radial statistics.
        """
        t1, t2, t3 = self.t_centers(shape)
        r = np.sqrt(t1 * t1 + t2 * t2) * (self.dist / t3)
        return (r / math.sqrt(self.pixel1 * self.pixel2)).astype(np.float32)

    def solid_angle(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Solid angle of each pixel relative to one at the PONI: ``(dist / |t|)**3``."""
        t1, t2, t3 = self.t_centers(shape)
        return (self.dist / np.sqrt(t1 * t1 + t2 * t2 + t3 * t3)) ** 3

    def polarization(self, shape: tuple[int, int], factor: float) -> NDArray[np.float64]:
        """Polarization correction ``0.5 (1 + cos^2 2th - f cos(2 chi) sin^2 2th)``."""
        if not -1.0 <= factor <= 1.0:
            raise ValueError(f"polarization factor must be in [-1, 1], got {factor}")
        t1, t2, t3 = self.t_centers(shape)
        tth = np.arctan2(np.sqrt(t1 * t1 + t2 * t2), t3)
        chi = np.arctan2(t1, t2)
        cos2 = np.cos(tth) ** 2
        sin2 = np.sin(tth) ** 2
        return 0.5 * (1.0 + cos2 - factor * np.cos(2.0 * chi) * sin2)


def _pixel_size_for(name: str | None) -> float | None:
    if not name:
        return None
    lower = name.lower()
    for prefix, size in _KNOWN_PIXELS:
        if lower.startswith(prefix):
            return size
    return None


def _float(fields: dict[str, str], key: str, default: float | None = None) -> float | None:
    raw = fields.get(key.lower())
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"PONI key {key!r}: {raw!r} is not a number") from None


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not a number") from None


def parse_poni(text: str) -> dict[str, Any]:
    """Parse PONI text into ``Geometry`` keyword arguments. Raises ``ValueError``."""
    fields: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if ":" not in stripped:
            raise ValueError(f"line {lineno}: expected 'key: value', got {stripped[:60]!r}")
        key, _, value = stripped.partition(":")
        fields[key.strip().lower()] = value.strip()

    version = _float(fields, "poni_version", 1.0)
    assert version is not None
    if int(version) not in (1, 2):
        raise ValueError(f"unsupported poni_version {fields.get('poni_version')!r}")

    missing = [k for k in ("Distance", "Poni1", "Poni2") if k.lower() not in fields]
    if missing:
        raise ValueError(f"missing PONI keys: {', '.join(missing)}")
    detector = fields.get("detector")
    config: dict[str, Any] = {}
    if "detector_config" in fields:
        try:
            config = json.loads(fields["detector_config"])
        except json.JSONDecodeError as exc:
            raise ValueError(f"Detector_config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError("Detector_config must be a JSON object")
    orientation = int(config.get("orientation", 3))
    if orientation not in (0, 3):
        raise ValueError(f"detector orientation {orientation} is not supported (only 3, pyFAI's default)")

    pixel1 = config.get("pixel1", _float(fields, "PixelSize1"))
    pixel2 = config.get("pixel2", _float(fields, "PixelSize2"))
    if pixel1 is None or pixel2 is None:
        known = _pixel_size_for(detector)
        if known is None:
            raise ValueError(
                f"pixel size unknown: no PixelSize1/2 or Detector_config pixel1/2 for detector {detector!r}"
            )
        pixel1 = pixel1 or known
        pixel2 = pixel2 or known
    max_shape = config.get("max_shape")
    if max_shape is not None:
        if not (isinstance(max_shape, (list, tuple)) and len(max_shape) == 2):
            raise ValueError(f"Detector_config max_shape must be [rows, cols], got {max_shape!r}")
        max_shape = (int(max_shape[0]), int(max_shape[1]))

    return {
        "dist": _float(fields, "Distance"),
        "poni1": _float(fields, "Poni1"),
        "poni2": _float(fields, "Poni2"),
        "rot1": _float(fields, "Rot1", 0.0),
        "rot2": _float(fields, "Rot2", 0.0),
        "rot3": _float(fields, "Rot3", 0.0),
        "wavelength": _float(fields, "Wavelength"),
        "pixel1": _number(pixel1, "pixel1"),
        "pixel2": _number(pixel2, "pixel2"),
        "max_shape": max_shape,
        "detector": detector,
    }
