"""peakfinder8 against OnDA's C++ peakfinder8 (ondamonitor) on frames with known spots."""

from __future__ import annotations

import numpy as np
import pytest

from dranspose.kernels import PEAK_DTYPE, PeakFinder8, peakfinder8
from dranspose.kernels.synthetic import match, spot_frame

import om.algorithms._crystallography as om_cryst

SHAPE = (1065, 1030)
PARAMS = dict(adc_threshold=20.0, min_snr=5.0, min_pix_count=2, max_pix_count=40, local_bg_radius=3)


def om_peaks(image, radius, good, asic=None, max_num_peaks=2048, **p):
    """Run OnDA's peakfinder8 (float32 input, int8 mask with 1 = good); returns (ss, fs) and fields."""
    ny, nx = asic if asic is not None else image.shape
    res = om_cryst.peakfinder_8(
        max_num_peaks, image.astype(np.float32), good.astype(np.int8), radius.astype(np.float32),
        0, np.zeros(1, np.int32), np.zeros(1, np.int32), 0, nx, ny, image.shape[1] // nx,
        image.shape[0] // ny, p["adc_threshold"], p["min_snr"], p["min_pix_count"],
        p["max_pix_count"], p["local_bg_radius"],
    )
    # OnDA's tuple: fs, ss, intensity, index, npix, max, local sigma, snr
    return np.array([res[1], res[0]], dtype=np.float64).T.reshape(-1, 2), res


@pytest.fixture(scope="module")
def frames():
    # an easy frame and one with weak spots (recall below 1 for both implementations)
    return [spot_frame(SHAPE, 200, seed=1), spot_frame(SHAPE, 200, seed=2, amplitude=(20.0, 80.0))]


@pytest.fixture(scope="module")
def finder(frames):
    _, _, radius = frames[0]
    return PeakFinder8(radius, **PARAMS, warmup=(np.uint32,))


def test_recall_precision_at_least_ondas(frames, finder) -> None:
    for image, truth, radius in frames:
        peaks = finder.find(image)
        assert peaks.dtype == PEAK_DTYPE
        ours = np.stack([peaks["ss"], peaks["fs"]], axis=1).astype(np.float64)
        theirs, _ = om_peaks(image, radius, np.ones(SHAPE), **PARAMS)
        recall, recall_om = match(ours, truth, 1.5).mean(), match(theirs, truth, 1.5).mean()
        precision, precision_om = match(truth, ours, 1.5).mean(), match(truth, theirs, 1.5).mean()
        assert recall >= recall_om and recall > 0.7
        assert precision >= precision_om
        assert match(ours, theirs, 1.0).mean() >= 0.99  # OnDA's peaks found within 1 px


def test_fields_equal_ondas(frames, finder) -> None:
    image, _, radius = frames[0]
    peaks = finder.find(image)
    _, res = om_peaks(image, radius, np.ones(SHAPE), **PARAMS)
    assert len(peaks) == len(res[0])
    np.testing.assert_allclose(peaks["fs"], res[0], atol=1e-3)
    np.testing.assert_allclose(peaks["ss"], res[1], atol=1e-3)
    np.testing.assert_allclose(peaks["intensity"], res[2], rtol=1e-4)
    np.testing.assert_array_equal(peaks["npix"], np.asarray(res[4]).astype(np.int32))
    np.testing.assert_allclose(peaks["max"], res[5], rtol=1e-4)
    np.testing.assert_allclose(peaks["snr"], res[7], rtol=1e-3)


def test_panels_mask_and_resolution_limits_match_ondas() -> None:
    shape = (512, 512)
    image, _, radius = spot_frame(shape, 80, seed=7, dtype=np.uint16)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[100:140, :] = 1
    mask[:, 300:303] = 1
    good = (mask == 0) & (radius >= 20) & (radius <= 240)
    finder = PeakFinder8(radius, mask=mask, min_res=20, max_res=240, asic_shape=(128, 256), **PARAMS, warmup=())
    peaks = finder.find(image)
    _, res = om_peaks(image, radius, good, asic=(128, 256), **PARAMS)
    assert len(peaks) == len(res[0]) > 20
    np.testing.assert_allclose(peaks["fs"], res[0], atol=1e-3)
    np.testing.assert_allclose(peaks["ss"], res[1], atol=1e-3)
    assert not np.any((peaks["ss"] > 99) & (peaks["ss"] < 140))


def test_max_num_peaks_and_dtypes(frames) -> None:
    image, _, radius = frames[1]
    capped = PeakFinder8(radius, **PARAMS, max_num_peaks=10, warmup=())
    first = capped.find(image)
    assert len(first) == 10 and capped.num_found > 10
    full = PeakFinder8(radius, **PARAMS, warmup=())
    ref = full.find(image)
    np.testing.assert_array_equal(first, ref[:10])
    for dtype in (np.float32, np.int32):
        np.testing.assert_array_equal(full.find(image.astype(dtype)), ref)


def test_one_shot_function_and_geometry_radius() -> None:
    from dranspose.kernels import Geometry

    shape = (256, 300)
    geom = Geometry(dist=0.1, poni1=127.5 * 75e-6, poni2=149.5 * 75e-6, pixel1=75e-6, pixel2=75e-6)
    image, truth, _ = spot_frame(shape, 30, seed=3, dtype=np.uint16, center=(127.0, 149.0))
    peaks = peakfinder8(image, geometry=geom, **PARAMS)
    found = np.stack([peaks["ss"], peaks["fs"]], axis=1).astype(np.float64)
    assert match(found, truth, 1.5).mean() > 0.9
    assert match(truth, found, 1.5).mean() == 1.0


def test_bad_input() -> None:
    radius = np.ones((20, 20), dtype=np.float32)
    finder = PeakFinder8(radius, warmup=())
    with pytest.raises(ValueError, match="shape"):
        finder.find(np.zeros((20, 21)))
    with pytest.raises(TypeError, match="dtype"):
        finder.find(np.zeros((20, 20), dtype=bool))
    with pytest.raises(ValueError, match="tile"):
        PeakFinder8(radius, asic_shape=(7, 20), warmup=())
    with pytest.raises(ValueError, match="radius"):
        PeakFinder8(np.full((4, 4), np.nan), warmup=())
    with pytest.raises(ValueError, match="geometry"):
        PeakFinder8(None, warmup=())


def test_grouped_and_streaming_radial_statistics_agree(frames) -> None:
    """The per-frame path (pixels grouped by radius) equals the straightforward 5-pass version."""
    from dranspose.kernels import _pf8

    image, _, radius = frames[0]
    finder = PeakFinder8(radius, **PARAMS, warmup=())
    finder.find(image)
    nb = finder.nbins
    acc = np.zeros((2, nb, 3))
    out = [np.zeros(nb, np.float32) for _ in range(4)]
    _pf8.radial_thresholds(image.reshape(-1), finder._rcode, nb, 5, PARAMS["min_snr"], PARAMS["adc_threshold"],
                           acc, 2, *out)
    np.testing.assert_allclose(finder.roffset, out[0], rtol=1e-6)
    np.testing.assert_allclose(finder.rsigma, out[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(finder.rthreshold, out[2], rtol=1e-5)
    assert np.all(finder.rthreshold >= PARAMS["adc_threshold"])
