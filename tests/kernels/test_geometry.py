"""PONI files and pixel geometry against pyFAI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dranspose.kernels import Geometry

import pyFAI

PONI_V1 = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done at Mon Nov 23 2026
PixelSize1: 7.5e-05
PixelSize2: 7.5e-05
Distance: 0.1987
Poni1: 0.0401
Poni2: 0.0352
Rot1: 0.011
Rot2: -0.007
Rot3: 0.0
Wavelength: 9.762e-11
"""

PONI_V2 = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
poni_version: 2.1
Detector: Detector
Detector_config: {"pixel1": 7.5e-05, "pixel2": 7.6e-05, "orientation": 3, "max_shape": [1065, 1030]}
Distance: 0.2
Poni1: 0.04
Poni2: 0.035
Rot1: 0.02
Rot2: -0.01
Rot3: 0.03
Wavelength: 1e-10
"""

PONI_NAMED = """poni_version: 2
Detector: Eiger1M
Detector_config: {}
Distance: 0.15
Poni1: 0.03
Poni2: 0.04
Rot1: 0
Rot2: 0
Rot3: 0
Wavelength: 1.0332e-10
"""


@pytest.mark.parametrize("text", [PONI_V1, PONI_V2, PONI_NAMED])
def test_poni_fields_match_pyfai(tmp_path: Path, text: str) -> None:
    path = tmp_path / "geom.poni"
    path.write_text(text)
    ours = Geometry.from_poni(path)
    ref = pyFAI.load(str(path))
    for name in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength"):
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-15), name
    assert ours.pixel1 == pytest.approx(ref.detector.pixel1)
    assert ours.pixel2 == pytest.approx(ref.detector.pixel2)


def test_v2_max_shape_and_round_trip(tmp_path: Path) -> None:
    geom = Geometry.from_poni_text(PONI_V2)
    assert geom.max_shape == (1065, 1030)
    path = tmp_path / "out.poni"
    path.write_text(geom.to_poni_text())
    assert Geometry.from_poni(path) == geom
    ref = pyFAI.load(str(path))
    assert ref.detector.pixel2 == pytest.approx(7.6e-5)
    assert ref.rot3 == pytest.approx(0.03)


def test_positions_and_corrections_match_pyfai() -> None:
    geom = Geometry.from_poni_text(PONI_V2)
    shape = (200, 160)
    from pyFAI.detectors import Detector
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ref = AzimuthalIntegrator(
        dist=geom.dist, poni1=geom.poni1, poni2=geom.poni2, rot1=geom.rot1, rot2=geom.rot2,
        rot3=geom.rot3, wavelength=geom.wavelength,
        detector=Detector(geom.pixel1, geom.pixel2, max_shape=shape),
    )
    np.testing.assert_allclose(geom.tth(shape), ref.center_array(shape, "2th_rad", scale=False), rtol=1e-13)
    np.testing.assert_allclose(geom.chi(shape), ref.center_array(shape, "chi_rad", scale=False), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(geom.solid_angle(shape), ref.solidAngleArray(shape), rtol=1e-6)
    np.testing.assert_allclose(geom.polarization(shape, 0.9), ref.polarization(shape, 0.9), rtol=1e-6)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Distance: 0.1\nPoni1: 0\n", "missing PONI keys: Poni2"),
        ("poni_version: 2\nDetector: Mystery\nDetector_config: {}\nDistance: 1\nPoni1: 0\nPoni2: 0\n", "pixel size"),
        ("poni_version: 2\nDetector_config: {not json\nDistance: 1\nPoni1: 0\nPoni2: 0\n", "JSON"),
        ("PixelSize1: 1e-4\nPixelSize2: 1e-4\nDistance: abc\nPoni1: 0\nPoni2: 0\n", "not a number"),
        ("PixelSize1: 1e-4\nPixelSize2: 1e-4\nDistance: -1\nPoni1: 0\nPoni2: 0\n", "positive"),
        ("poni_version: 7\n", "poni_version"),
        ("just some text\n", "key: value"),
        (
            'poni_version: 2.1\nDetector_config: {"pixel1": 1e-4, "pixel2": 1e-4, "orientation": 1}\n'
            "Distance: 1\nPoni1: 0\nPoni2: 0\n",
            "orientation",
        ),
    ],
)
def test_bad_poni_is_a_value_error_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.poni"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        Geometry.from_poni(path)
    assert "bad.poni" in str(info.value)


def test_radius_pixels_is_distance_from_poni_without_tilt() -> None:
    geom = Geometry(dist=0.1, poni1=10.5 * 75e-6, poni2=20.5 * 75e-6, pixel1=75e-6, pixel2=75e-6)
    r = geom.radius_pixels((30, 40))
    yy, xx = np.indices((30, 40))
    np.testing.assert_allclose(r, np.hypot(yy - 10, xx - 20), atol=1e-4)
