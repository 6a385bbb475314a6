"""Build the pixel -> (bin, weight) map once per geometry (Numba, run at construction).

The map is pixel-major CSR: entries ``ptr[p]:ptr[p+1]`` of ``bins``/``coefs`` are the output
bins of pixel ``p`` and the fraction of the pixel in each. The binning follows pyFAI's
bounding-box rules exactly (``splitBBox_common``): the bin number of a position is
``(x - pos_min) / delta`` truncated toward zero, the pixel spans ``[c - d, c + d]``,
bins are clipped to the range and the edge fractions are computed from the unclipped bin
numbers. With no splitting ``d = 0``, so every pixel lands in exactly one bin.

Output bins of a 2D (cake) map are ``azimuthal_bin * n_radial + radial_bin`` so that the
result reshapes to ``(npt_azim, npt)`` without a transpose.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def _span(lo: float, hi: float, vmin: float, delta: float, nbins: int):  # type: ignore[no-untyped-def]
    """Clipped first/last bin and unclipped fractional bin numbers of ``[lo, hi]``."""
    flo = (lo - vmin) / delta
    fhi = (hi - vmin) / delta
    blo = int(flo)  # truncation toward zero, as a C cast
    bhi = int(fhi)
    if bhi < 0 or blo >= nbins:
        return -1, -1, flo, fhi
    if bhi > nbins - 1:
        bhi = nbins - 1
    if blo < 0:
        blo = 0
    return blo, bhi, flo, fhi


@njit(cache=True, nogil=True)
def _fractions(blo: int, bhi: int, flo: float, fhi: float, out: NDArray[np.float64]) -> int:
    """Fractions of a pixel spread over bins ``blo..bhi`` (pyFAI's formula); returns count."""
    n = bhi - blo + 1
    if n == 1:
        out[0] = 1.0
        return 1
    inv = 1.0 / (fhi - flo)
    out[0] = inv * ((blo + 1.0) - flo)
    for k in range(1, n - 1):
        out[k] = inv
    out[n - 1] = inv * (fhi - bhi)
    return n


@njit(cache=True, nogil=True)
def build_map_1d(
    pos0: NDArray[np.float64],
    dpos0: NDArray[np.float64],
    pos1: NDArray[np.float64],
    dpos1: NDArray[np.float64],
    valid: NDArray[np.bool_],
    pos0_min: float,
    delta0: float,
    nbins0: int,
    check_pos1: bool,
    pos1_min: float,
    pos1_maxin: float,
):  # type: ignore[no-untyped-def]
    """Pixel-major CSR for 1D integration; ``dpos0`` all zero means no splitting."""
    npix = pos0.shape[0]
    ptr = np.zeros(npix + 1, dtype=np.int64)
    frac = np.empty(nbins0 + 1, dtype=np.float64)
    for p in range(npix):
        n = 0
        if valid[p]:
            c, d = pos0[p], dpos0[p]
            keep = True
            if check_pos1 and (pos1[p] + dpos1[p] < pos1_min or pos1[p] - dpos1[p] > pos1_maxin):
                keep = False
            if keep:
                blo, bhi, flo, fhi = _span(c - d, c + d, pos0_min, delta0, nbins0)
                if blo >= 0:
                    n = bhi - blo + 1
        ptr[p + 1] = ptr[p] + n
    nnz = ptr[npix]
    bins = np.empty(nnz, dtype=np.int32)
    coefs = np.empty(nnz, dtype=np.float32)
    for p in range(npix):
        start = ptr[p]
        n = ptr[p + 1] - start
        if n == 0:
            continue
        c, d = pos0[p], dpos0[p]
        blo, bhi, flo, fhi = _span(c - d, c + d, pos0_min, delta0, nbins0)
        _fractions(blo, bhi, flo, fhi, frac)
        for k in range(n):
            bins[start + k] = blo + k
            coefs[start + k] = np.float32(frac[k])
    return ptr, bins, coefs


@njit(cache=True, nogil=True)
def build_map_2d(
    pos0: NDArray[np.float64],
    dpos0: NDArray[np.float64],
    pos1: NDArray[np.float64],
    dpos1: NDArray[np.float64],
    valid: NDArray[np.bool_],
    pos0_min: float,
    delta0: float,
    nbins0: int,
    pos1_min: float,
    delta1: float,
    nbins1: int,
):  # type: ignore[no-untyped-def]
    """Pixel-major CSR for 2D (radial x azimuthal) integration with bounding boxes."""
    npix = pos0.shape[0]
    ptr = np.zeros(npix + 1, dtype=np.int64)
    frac0 = np.empty(nbins0 + 1, dtype=np.float64)
    frac1 = np.empty(nbins1 + 1, dtype=np.float64)
    for p in range(npix):
        n = 0
        if valid[p]:
            c0, d0, c1, d1 = pos0[p], dpos0[p], pos1[p], dpos1[p]
            a0, b0, _, _ = _span(c0 - d0, c0 + d0, pos0_min, delta0, nbins0)
            a1, b1, _, _ = _span(c1 - d1, c1 + d1, pos1_min, delta1, nbins1)
            if a0 >= 0 and a1 >= 0:
                n = (b0 - a0 + 1) * (b1 - a1 + 1)
        ptr[p + 1] = ptr[p] + n
    nnz = ptr[npix]
    bins = np.empty(nnz, dtype=np.int32)
    coefs = np.empty(nnz, dtype=np.float32)
    for p in range(npix):
        e = ptr[p]
        if ptr[p + 1] == e:
            continue
        c0, d0, c1, d1 = pos0[p], dpos0[p], pos1[p], dpos1[p]
        a0, b0, flo0, fhi0 = _span(c0 - d0, c0 + d0, pos0_min, delta0, nbins0)
        a1, b1, flo1, fhi1 = _span(c1 - d1, c1 + d1, pos1_min, delta1, nbins1)
        n0 = _fractions(a0, b0, flo0, fhi0, frac0)
        n1 = _fractions(a1, b1, flo1, fhi1, frac1)
        for j in range(n1):
            for i in range(n0):
                bins[e] = (a1 + j) * nbins0 + (a0 + i)
                coefs[e] = np.float32(frac0[i] * frac1[j])
                e += 1
    return ptr, bins, coefs
