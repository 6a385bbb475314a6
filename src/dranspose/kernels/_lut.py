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


@njit(cache=True, nogil=True)
def _footprint(bins: NDArray[np.int32], coefs: NDArray[np.float32], e: int, n: int, n0: int) -> int:
    """Class of a pixel's entries ``e:e+n`` of a 2D map: 0 one bin (weight 1), 1 two radial
    neighbours ``(b, b+1)``, 2 two azimuthal neighbours ``(b, b+n0)``, 3 the 2x2 square
    ``(b, b+1, b+n0, b+n0+1)``, 4 any other footprint, 5 unused."""
    if n == 0:
        return 5
    if n == 1:
        return 0 if coefs[e] == 1.0 else 4
    b = bins[e]
    if n == 2 and bins[e + 1] == b + 1:
        return 1
    if n == 2 and bins[e + 1] == b + n0:
        return 2
    if n == 4 and bins[e + 1] == b + 1 and bins[e + 2] == b + n0 and bins[e + 3] == b + n0 + 1:
        return 3
    return 4


def group_shift(nbins: int) -> int:
    """log2 of the block size of the grouped layout for ``nbins`` bins (blocks of at most
    32768 pixels; a bin number and an offset in the block share one uint32), or -1 when
    there are too many bins for blocks of at least 1024 pixels."""
    shift = 32 - int(nbins).bit_length()
    return min(15, shift) if shift >= 10 else -1


@njit(cache=True, nogil=True)
def group_2d(
    ptr: NDArray[np.int64],
    bins: NDArray[np.int32],
    coefs: NDArray[np.float32],
    n0: int,
    shift: int,
):  # type: ignore[no-untyped-def]
    """Regroup a pixel-major 2D map by footprint, per block of ``2**shift`` pixels.

    Most bounding boxes of a cake cover one bin, two neighbouring bins or a 2x2 square of
    bins; inside every block the pixels of each footprint class are listed apart, in pixel
    order, so the per-frame loops have a fixed trip count and no per-pixel branch, and
    one-bin pixels carry no weight at all. An entry's ``code`` is ``(first_bin << shift) |
    offset_in_block`` (the caller guarantees it fits in 32 bits). Same bins and float32
    weights as the input, so the same sums. Returns ``(starts, s_code, r_code, r_w, a_code,
    a_w, q_code, q_w, x_code, x_ptr, x_bin, x_w)``: ``starts[k, blk]:starts[k, blk+1]`` are
    the entries of class k (0 one bin, 1 radial pair, 2 azimuthal pair, 3 square, 4 other,
    CSR through ``x_ptr``) in block ``blk``.
    """
    npix = ptr.shape[0] - 1
    block = 1 << shift
    nblk = (npix + block - 1) // block
    cnt = np.zeros(6, dtype=np.int64)
    nxe = 0
    for p in range(npix):
        e = ptr[p]
        n = ptr[p + 1] - e
        k = _footprint(bins, coefs, e, n, n0)
        cnt[k] += 1
        if k == 4:
            nxe += n
    s_code = np.empty(cnt[0], dtype=np.uint32)
    r_code = np.empty(cnt[1], dtype=np.uint32)
    r_w = np.empty((cnt[1], 2), dtype=np.float32)
    a_code = np.empty(cnt[2], dtype=np.uint32)
    a_w = np.empty((cnt[2], 2), dtype=np.float32)
    q_code = np.empty(cnt[3], dtype=np.uint32)
    q_w = np.empty((cnt[3], 4), dtype=np.float32)
    x_code = np.empty(cnt[4], dtype=np.uint32)
    x_ptr = np.zeros(cnt[4] + 1, dtype=np.int64)
    x_bin = np.empty(nxe, dtype=np.int32)
    x_w = np.empty(nxe, dtype=np.float32)
    starts = np.zeros((5, nblk + 1), dtype=np.int64)
    pos = np.zeros(5, dtype=np.int64)
    m = 0
    for p in range(npix):
        blk = p >> shift
        if p == blk << shift:
            starts[:, blk] = pos
        e = ptr[p]
        n = ptr[p + 1] - e
        k = _footprint(bins, coefs, e, n, n0)
        if k == 5:
            continue
        i = pos[k]
        pos[k] += 1
        code = (np.uint32(bins[e]) << np.uint32(shift)) | np.uint32(p - (blk << shift))
        if k == 0:
            s_code[i] = code
        elif k == 1:
            r_code[i] = code
            r_w[i, 0] = coefs[e]
            r_w[i, 1] = coefs[e + 1]
        elif k == 2:
            a_code[i] = code
            a_w[i, 0] = coefs[e]
            a_w[i, 1] = coefs[e + 1]
        elif k == 3:
            q_code[i] = code
            for t in range(4):
                q_w[i, t] = coefs[e + t]
        else:
            x_code[i] = np.uint32(p - (blk << shift))
            for t in range(n):
                x_bin[m] = bins[e + t]
                x_w[m] = coefs[e + t]
                m += 1
            x_ptr[i + 1] = m
    starts[:, nblk] = pos
    return starts, s_code, r_code, r_w, a_code, a_w, q_code, q_w, x_code, x_ptr, x_bin, x_w
