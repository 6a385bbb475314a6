"""AzimuthalIntegrator against pyFAI (same geometry, bins and ranges; csr engines)."""

from __future__ import annotations

import numpy as np
import pytest

from dranspose.kernels import AzimuthalIntegrator, Geometry

from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator as PyFAIIntegrator

SHAPE_1M = (1065, 1030)
SHAPE_4M = (2162, 2068)
TOL = 1e-5
GEOM = Geometry(
    dist=0.2, poni1=0.04, poni2=0.035, rot1=0.02, rot2=-0.01, rot3=0.03,
    wavelength=1.0e-10, pixel1=75e-6, pixel2=75e-6,
)
RANGES = {"q_nm^-1": (1.0, 40.0), "q_A^-1": (0.1, 4.0), "2th_deg": (0.5, 30.0), "r_mm": (1.0, 80.0)}


def pyfai_for(geom: Geometry, shape: tuple[int, int]) -> PyFAIIntegrator:
    det = Detector(geom.pixel1, geom.pixel2, max_shape=shape)
    return PyFAIIntegrator(
        dist=geom.dist, poni1=geom.poni1, poni2=geom.poni2, rot1=geom.rot1, rot2=geom.rot2,
        rot3=geom.rot3, wavelength=geom.wavelength, detector=det,
    )


def rel_dev(ours: np.ndarray, ref: np.ndarray) -> float:
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    both_empty = (ref == 0) & (ours == 0)
    denom = np.where(ref == 0, 1.0, np.abs(ref))
    dev = np.abs(ours - ref) / denom
    return float(dev[~both_empty].max()) if (~both_empty).any() else 0.0


@pytest.fixture(scope="module")
def ref1m() -> PyFAIIntegrator:
    return pyfai_for(GEOM, SHAPE_1M)


@pytest.fixture(scope="module")
def frame1m() -> np.ndarray:
    rng = np.random.default_rng(3)
    r = np.hypot(*np.indices(SHAPE_1M) - np.array([533.0, 467.0])[:, None, None])
    mean = 50.0 + 400.0 * np.exp(-(((r % 90.0) - 45.0) ** 2) / 20.0)
    return rng.poisson(mean).astype(np.uint32)


@pytest.fixture(scope="module")
def mask1m() -> np.ndarray:
    mask = np.zeros(SHAPE_1M, dtype=np.int8)
    mask[514:551, :] = 1  # a module gap
    mask[:, 255:258] = 1
    mask[100, 100] = 1
    return mask


@pytest.mark.parametrize("splitting", ["none", "bbox"])
@pytest.mark.parametrize("unit", list(RANGES))
def test_1d_matches_pyfai(ref1m, frame1m, mask1m, splitting: str, unit: str) -> None:
    rr = RANGES[unit]
    ours = AzimuthalIntegrator(
        GEOM, SHAPE_1M, 1000, unit, radial_range=rr, mask=mask1m, polarization_factor=0.95,
        error_model="poisson", splitting=splitting, warmup=(),
    )
    radial, intensity, sigma = ours.integrate1d(frame1m)
    method = ("no" if splitting == "none" else "bbox", "csr", "cython")
    ref = ref1m.integrate1d(
        frame1m, 1000, unit=unit, radial_range=rr, mask=mask1m, polarization_factor=0.95,
        error_model="poisson", method=method, correctSolidAngle=True,
    )
    np.testing.assert_allclose(radial, ref.radial, rtol=1e-12)
    assert rel_dev(intensity, ref.intensity) <= TOL
    assert rel_dev(sigma, ref.sigma) <= TOL
    assert (intensity == 0).sum() == (ref.intensity == 0).sum()


@pytest.mark.parametrize("splitting", ["none", "bbox"])
def test_2d_matches_pyfai(ref1m, frame1m, mask1m, splitting: str) -> None:
    ours = AzimuthalIntegrator(
        GEOM, SHAPE_1M, 500, "q_nm^-1", npt_azim=360, radial_range=(1.0, 40.0),
        azimuth_range=(-180.0, 180.0), mask=mask1m, polarization_factor=-0.5,
        error_model="poisson", splitting=splitting, warmup=(),
    )
    intensity, radial, azimuthal = ours.integrate2d(frame1m)
    method = ("no" if splitting == "none" else "bbox", "csr", "cython")
    ref = ref1m.integrate2d_ng(
        frame1m, 500, 360, unit="q_nm^-1", radial_range=(1.0, 40.0), azimuth_range=(-180.0, 180.0),
        mask=mask1m, polarization_factor=-0.5, error_model="poisson", method=method,
    )
    assert intensity.shape == (360, 500) == ref.intensity.shape
    np.testing.assert_allclose(radial, ref.radial, rtol=1e-12)
    np.testing.assert_allclose(azimuthal, ref.azimuthal, rtol=1e-12)
    assert rel_dev(intensity, ref.intensity) <= TOL
    assert rel_dev(ours.last_sigma, ref.sigma) <= TOL
    # chi = +-180 deg crosses the beam-centre row: the discontinuity is populated
    assert np.count_nonzero(intensity[0]) > 100 and np.count_nonzero(intensity[-1]) > 100


def test_2d_default_ranges_match_pyfai(ref1m, frame1m) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 300, "2th_deg", npt_azim=90, splitting="bbox", warmup=())
    intensity, radial, azimuthal = ours.integrate2d(frame1m)
    ref = ref1m.integrate2d_ng(frame1m, 300, 90, unit="2th_deg", method=("bbox", "csr", "cython"))
    np.testing.assert_allclose(radial, ref.radial, rtol=1e-12)
    np.testing.assert_allclose(azimuthal, ref.azimuthal, rtol=1e-12)
    assert rel_dev(intensity, ref.intensity) <= TOL


def test_1d_default_range_no_solid_angle(ref1m, frame1m) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 700, "q_nm^-1", solid_angle=False, warmup=())
    radial, intensity, sigma = ours.integrate1d(frame1m)
    ref = ref1m.integrate1d(frame1m, 700, unit="q_nm^-1", correctSolidAngle=False, method=("no", "csr", "cython"))
    assert sigma is None
    np.testing.assert_allclose(radial, ref.radial, rtol=1e-12)
    assert rel_dev(intensity, ref.intensity) <= TOL


def test_dummy_flat_and_variance_model(ref1m, frame1m) -> None:
    image = frame1m.astype(np.float32)
    image[200:210, 300:700] = -1.0  # dummy pixels, rejected per frame
    image[400, 400] = np.nan  # NaN is always rejected in float data
    flat = np.random.default_rng(5).uniform(0.8, 1.2, SHAPE_1M).astype(np.float32)
    variance = (image * 1.5 + 2.0).astype(np.float32)
    variance[np.isnan(variance)] = 0
    ours = AzimuthalIntegrator(
        GEOM, SHAPE_1M, 800, "2th_deg", radial_range=(0.5, 30.0), dummy=-1.0, delta_dummy=0.5,
        flat=flat, error_model="variance", splitting="bbox", warmup=(),
    )
    _, intensity, sigma = ours.integrate1d(image, variance=variance)
    ref = ref1m.integrate1d(
        image, 800, unit="2th_deg", radial_range=(0.5, 30.0), dummy=-1.0, delta_dummy=0.5,
        flat=flat, variance=variance, method=("bbox", "csr", "cython"),
    )
    assert rel_dev(intensity, ref.intensity) <= TOL
    assert rel_dev(sigma, ref.sigma) <= TOL


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64])
def test_dtypes_give_same_result(frame1m, dtype) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 400, "q_nm^-1", radial_range=(1.0, 40.0), error_model="poisson", warmup=())
    _, ref_i, ref_s = ours.integrate1d(frame1m)
    ref_i, ref_s = ref_i.copy(), ref_s.copy()
    image = np.minimum(frame1m, np.iinfo(np.uint8).max if dtype == np.uint8 else 1 << 30).astype(dtype)
    expect = ours.integrate1d(image.astype(np.uint32))[1].copy() if dtype == np.uint8 else ref_i
    _, intensity, sigma = ours.integrate1d(image)
    np.testing.assert_allclose(intensity, expect, rtol=1e-12)
    if dtype != np.uint8:
        np.testing.assert_allclose(sigma, ref_s, rtol=1e-12)


def test_preallocated_outputs_and_strided_input(frame1m) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 256, "r_mm", error_model="poisson", warmup=())
    expect = ours.integrate1d(frame1m)[1].copy()
    out = np.empty(256)
    sig = np.empty(256, dtype=np.float32)
    _, intensity, sigma = ours.integrate1d(frame1m, out=out, sigma_out=sig)
    assert intensity is out and sigma is sig
    np.testing.assert_allclose(out, expect, rtol=1e-12)
    big = np.zeros((SHAPE_1M[0], SHAPE_1M[1] * 2), dtype=np.uint32)
    big[:, ::2] = frame1m
    np.testing.assert_allclose(ours.integrate1d(big[:, ::2])[1], expect, rtol=1e-12)


def test_bad_input_is_a_clear_error(frame1m) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 100, warmup=())
    with pytest.raises(ValueError, match="shape"):
        ours.integrate1d(frame1m[:-1])
    with pytest.raises(TypeError, match="dtype"):
        ours.integrate1d(frame1m.astype(np.complex64))
    with pytest.raises(ValueError, match="elements"):
        ours.integrate1d(frame1m, out=np.empty(99))
    with pytest.raises(ValueError, match="2D"):
        ours.integrate2d(frame1m)
    with pytest.raises(ValueError, match="unit"):
        AzimuthalIntegrator(GEOM, SHAPE_1M, 100, "furlongs", warmup=())
    with pytest.raises(ValueError, match="splitting"):
        AzimuthalIntegrator(GEOM, SHAPE_1M, 100, splitting="full", warmup=())
    with pytest.raises(ValueError, match="wavelength"):
        AzimuthalIntegrator(Geometry(dist=0.1, poni1=0.0, poni2=0.0), (10, 10), 5, warmup=())
    var_model = AzimuthalIntegrator(GEOM, SHAPE_1M, 100, error_model="variance", warmup=())
    with pytest.raises(ValueError, match="variance"):
        var_model.integrate1d(frame1m)


def test_4m_bbox_poisson_matches_pyfai() -> None:
    geom = Geometry(dist=0.25, poni1=0.081, poni2=0.077, rot1=0.01, rot2=0.005, rot3=0.0,
                    wavelength=0.9e-10, pixel1=75e-6, pixel2=75e-6)
    rng = np.random.default_rng(11)
    image = rng.poisson(120.0, SHAPE_4M).astype(np.uint32)
    mask = np.zeros(SHAPE_4M, dtype=np.int8)
    mask[:, 1030:1040] = 1
    ours = AzimuthalIntegrator(geom, SHAPE_4M, 1000, "q_nm^-1", radial_range=(0.5, 45.0), mask=mask,
                               polarization_factor=0.99, error_model="poisson", splitting="bbox", warmup=())
    _, intensity, sigma = ours.integrate1d(image)
    ref = pyfai_for(geom, SHAPE_4M).integrate1d(
        image, 1000, unit="q_nm^-1", radial_range=(0.5, 45.0), mask=mask, polarization_factor=0.99,
        error_model="poisson", method=("bbox", "csr", "cython"),
    )
    assert rel_dev(intensity, ref.intensity) <= TOL
    assert rel_dev(sigma, ref.sigma) <= TOL


@pytest.mark.parametrize(("npt", "layout"), [(600, "run"), (6000, "csr")])
def test_1d_bbox_map_layouts_match_pyfai(ref1m, frame1m, npt: int, layout: str) -> None:
    """Coarse bins use the compact run layout, very fine bins (pixels over > 4 bins) the CSR map."""
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, npt, "r_mm", radial_range=(2.0, 60.0), splitting="bbox",
                               error_model="poisson", warmup=())
    assert ours._layout == layout
    _, intensity, sigma = ours.integrate1d(frame1m)
    ref = ref1m.integrate1d(frame1m, npt, unit="r_mm", radial_range=(2.0, 60.0), error_model="poisson",
                            method=("bbox", "csr", "cython"))
    assert rel_dev(intensity, ref.intensity) <= TOL
    assert rel_dev(sigma, ref.sigma) <= TOL


def test_layouts_chosen() -> None:
    none = AzimuthalIntegrator(GEOM, SHAPE_1M, 100, warmup=())
    cake = AzimuthalIntegrator(GEOM, SHAPE_1M, 100, npt_azim=36, splitting="bbox", warmup=())
    assert none._layout == "single" and cake._layout == "grouped"
    assert none.nbytes_touched == 4 * SHAPE_1M[0] * SHAPE_1M[1]


def test_construction_compiles_the_per_frame_path() -> None:
    """Warm-up runs every kernel of a frame for the listed dtypes, so event 1 compiles nothing."""
    from dranspose.kernels import _hist

    ours = AzimuthalIntegrator(GEOM, (64, 48), 20, warmup=(np.int16,))
    compiled = [str(sig) for sig in _hist.scatter_single.signatures]
    assert any("int16" in sig for sig in compiled)
    before = {f: len(f.signatures) for f in (_hist.scatter_single, _hist.finalize)}
    ours.integrate1d(np.ones((64, 48), dtype=np.int16))
    assert {f: len(f.signatures) for f in before} == before


def test_sums_are_the_per_bin_accumulators(frame1m) -> None:
    ours = AzimuthalIntegrator(GEOM, SHAPE_1M, 300, "2th_deg", error_model="poisson", warmup=())
    _, intensity, sigma = ours.integrate1d(frame1m)
    signal, variance, norm, count = ours.sums
    filled = count > 0
    np.testing.assert_allclose(intensity[filled], signal[filled] / norm[filled], rtol=1e-12)
    np.testing.assert_allclose(sigma[filled], np.sqrt(variance[filled]) / norm[filled], rtol=1e-12)
    assert count.sum() == pytest.approx(np.count_nonzero(ours._index >= 0))
    assert signal.sum() == pytest.approx(frame1m.reshape(-1)[ours._index >= 0].sum(dtype=np.float64))


@pytest.mark.parametrize("error_model", ["variance", None])
def test_2d_bbox_grouped_dummy_flat_variance(ref1m, frame1m, mask1m, error_model) -> None:
    """The grouped 2D layout (one bin, pairs, 2x2 squares and larger footprints listed apart)
    with per-frame rejection (dummy, NaN), a flat and a variance array, against pyFAI."""
    image = frame1m.astype(np.float32)
    image[200:210, 300:700] = -1.0
    image[400, 400] = np.nan
    flat = np.random.default_rng(6).uniform(0.8, 1.2, SHAPE_1M).astype(np.float32)
    variance = np.nan_to_num(image * 1.5 + 2.0).astype(np.float32)
    # fine bins near the beam centre: many pixels cover more than a 2x2 square of bins
    ours = AzimuthalIntegrator(
        GEOM, SHAPE_1M, 1200, "q_nm^-1", npt_azim=720, radial_range=(0.2, 40.0), azimuth_range=(-180.0, 180.0),
        mask=mask1m, dummy=-1.0, delta_dummy=0.5, flat=flat, polarization_factor=0.9, error_model=error_model,
        splitting="bbox", warmup=(),
    )
    assert ours._layout == "grouped"
    starts = ours._grouped[0]
    assert all(starts[k, -1] > 1000 for k in range(5))  # every footprint class is exercised
    intensity, _, _ = ours.integrate2d(image, variance=variance if error_model else None)
    ref = ref1m.integrate2d_ng(
        image, 1200, 720, unit="q_nm^-1", radial_range=(0.2, 40.0), azimuth_range=(-180.0, 180.0), mask=mask1m,
        dummy=-1.0, delta_dummy=0.5, flat=flat, polarization_factor=0.9,
        variance=variance if error_model else None, method=("bbox", "csr", "cython"),
    )
    assert rel_dev(intensity, ref.intensity) <= TOL
    if error_model:
        assert rel_dev(ours.last_sigma, ref.sigma) <= TOL
    if error_model is None:
        # without a dummy, integer data takes the static fast path (precomputed norm), float
        # data the per-frame one: same result, and pyFAI's
        plain = AzimuthalIntegrator(
            GEOM, SHAPE_1M, 1200, "q_nm^-1", npt_azim=720, radial_range=(0.2, 40.0),
            azimuth_range=(-180.0, 180.0), mask=mask1m, flat=flat, polarization_factor=0.9, splitting="bbox",
            warmup=(),
        )
        fast = plain.integrate2d(frame1m)[0].copy()
        assert not plain._last_dynamic
        slow = plain.integrate2d(frame1m.astype(np.float32))[0]
        assert plain._last_dynamic
        np.testing.assert_allclose(fast, slow, rtol=1e-9)
        ref = ref1m.integrate2d_ng(
            frame1m, 1200, 720, unit="q_nm^-1", radial_range=(0.2, 40.0), azimuth_range=(-180.0, 180.0),
            mask=mask1m, flat=flat, polarization_factor=0.9, method=("bbox", "csr", "cython"),
        )
        assert rel_dev(fast, ref.intensity) <= TOL


def test_grouped_block_size_fits_bin_and_offset_in_32_bits() -> None:
    from dranspose.kernels._lut import group_shift

    assert group_shift(500 * 360) == 14  # 18-bit bin numbers, blocks of 16384 pixels
    assert group_shift(1000) == 15
    assert group_shift(2**22) == -1  # too many bins: the general CSR map is used
    for nbins in (36, 180_000, 2**21):
        assert (nbins - 1) << group_shift(nbins) < 2**32
