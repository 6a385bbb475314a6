"""Dispersion (DIALS-style) spot finding: a SciPy reference and frames with known spots."""

from __future__ import annotations

import numpy as np
import pytest

from dranspose.kernels import PEAK_DTYPE, DispersionSpotFinder, PeakFinder8, find_spots_dispersion
from dranspose.kernels.synthetic import match, spot_frame

from scipy import ndimage

SHAPE = (1065, 1030)


def reference_strong(image, mask, k=3, gain=1.0, nsig_b=6.0, nsig_s=3.0, min_local=2, threshold=0.0):
    """Straightforward NumPy/SciPy version of the same per-pixel test (box sums by filtering)."""
    good = (mask == 0).astype(np.float64)
    x = image.astype(np.float64) * good
    size = 2 * k + 1
    box = lambda a: ndimage.uniform_filter(a, size=size, mode="constant", cval=0.0) * size * size  # noqa: E731
    n = np.rint(box(good))
    s = box(x)
    s2 = box(x * x)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = s / n
        v = (s2 - s * m) / (n - 1)
        ok = (good > 0) & (n >= max(min_local, 2)) & (m > 0)
        c1 = v / m > gain * (1 + nsig_b * np.sqrt(2 / (n - 1)))
        c2 = x - m > nsig_s * np.sqrt(gain * m)
    return ok & c1 & c2 & (x > threshold)


def test_strong_pixels_match_reference() -> None:
    image, _, _ = spot_frame((300, 257), 20, seed=4, dtype=np.uint16)
    mask = np.zeros(image.shape, dtype=np.uint8)
    mask[50:60, :] = 1
    mask[:, 3] = 1
    finder = DispersionSpotFinder(image.shape, mask=mask, warmup=())
    ours = finder.strong_pixels(image)
    ref = reference_strong(image, mask)
    assert ours.sum() > 50
    # float round-off can flip a pixel sitting exactly on a threshold; allow none here
    np.testing.assert_array_equal(ours, ref)


def test_recall_precision_and_agreement_with_peakfinder8() -> None:
    image, truth, radius = spot_frame(SHAPE, 200, seed=5)
    finder = DispersionSpotFinder(SHAPE, warmup=(np.uint32,))
    spots = finder.find(image)
    assert spots.dtype == PEAK_DTYPE
    found = np.stack([spots["ss"], spots["fs"]], axis=1).astype(np.float64)
    assert match(found, truth, 1.5).mean() >= 0.95
    assert match(truth, found, 1.5).mean() >= 0.95
    pf8 = PeakFinder8(radius, adc_threshold=20.0, min_snr=5.0, max_pix_count=40, warmup=())
    peaks = pf8.find(image)
    both = np.stack([peaks["ss"], peaks["fs"]], axis=1).astype(np.float64)
    assert match(found, both, 1.0).mean() >= 0.95
    assert np.all(spots["npix"] >= 2) and np.all(spots["snr"] > 0)
    # the work buffers are clean: a second run gives the same answer
    np.testing.assert_array_equal(finder.find(image), spots)


def test_one_shot_and_bad_input() -> None:
    image, truth, _ = spot_frame((128, 160), 8, seed=9, dtype=np.float32)
    spots = find_spots_dispersion(image, min_spot_size=3)
    found = np.stack([spots["ss"], spots["fs"]], axis=1).astype(np.float64)
    assert match(found, truth, 1.5).mean() == 1.0
    with pytest.raises(ValueError, match="shape"):
        DispersionSpotFinder((128, 160), warmup=()).find(image[:-1])
    with pytest.raises(ValueError, match="mask"):
        DispersionSpotFinder((128, 160), mask=np.zeros((2, 2)), warmup=())
