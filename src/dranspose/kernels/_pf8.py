"""peakfinder8 kernels (Numba). The algorithm of Cheetah/OnDA's peakfinder8, written anew.

``rcode[p]`` encodes each pixel's integer radius bin ``r`` as ``r`` for a usable pixel and
``-1 - r`` for a masked one (so masked pixels still know their radius). Images are read in
their own dtype and converted per pixel to float32, as OnDA does with a copy.

Per frame: :func:`group_by_radius` copies the usable pixels into a float32 buffer grouped by
radius bin (one streaming pass), :func:`grouped_statistics` runs peakfinder8's 5 iterations
of each bin on its cache-resident values (bins in parallel; :func:`radial_thresholds` is the
straightforward 5-pass version, kept as the reference), :func:`candidates` collects the seed
pixels in parallel, and :func:`grow_and_measure` flood-fills them sequentially.

Work buffers (``pixmap``, ``queue``, ``touched``, ``cand``) are owned by the caller, sized to
the image, and reused between frames; ``pixmap`` must be all zero on entry and is left all
zero.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

FLT_MAX = np.float32(3.4028234663852886e38)
FLT_MIN = np.float32(1.1754943508222875e-38)


@njit(cache=True, nogil=True)
def _radial_chunk(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    acc_c: NDArray[np.float64],
    start: int,
    stop: int,
    rthreshold: NDArray[np.float32],
    lthreshold: NDArray[np.float32],
) -> None:
    acc_c[:, :] = 0.0
    data = data[start:stop]
    rcode = rcode[start:stop]
    for p in range(data.shape[0]):
        r = rcode[p]
        if r < 0:
            continue
        v = np.float32(data[p])
        if v < rthreshold[r] and v > lthreshold[r]:
            acc_c[r, 0] += v
            acc_c[r, 1] += np.float64(v) * v
            acc_c[r, 2] += 1.0


@njit(cache=True, nogil=True)
def _update_thresholds(
    acc: NDArray[np.float64],
    nchunks: int,
    min_snr: np.float32,
    adc_threshold: float,
    roffset: NDArray[np.float32],
    rsigma: NDArray[np.float32],
    rthreshold: NDArray[np.float32],
    lthreshold: NDArray[np.float32],
) -> None:
    for b in range(rthreshold.shape[0]):
        total = 0.0
        total2 = 0.0
        count = 0.0
        for c in range(nchunks):
            total += acc[c, b, 0]
            total2 += acc[c, b, 1]
            count += acc[c, b, 2]
        if count == 0.0:
            roffset[b] = 0.0
            rsigma[b] = 0.0
            rthreshold[b] = FLT_MAX
            lthreshold[b] = FLT_MIN
        else:
            mean = total / count
            var = total2 / count - mean * mean
            sig = math.sqrt(var) if var >= 0.0 else 0.0
            roffset[b] = np.float32(mean)
            rsigma[b] = np.float32(sig)
            hi = roffset[b] + min_snr * rsigma[b]
            rthreshold[b] = hi if hi >= adc_threshold else np.float32(adc_threshold)
            lthreshold[b] = roffset[b] - min_snr * rsigma[b]


@njit(cache=True, nogil=True, parallel=True)
def radial_thresholds(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    nbins: int,
    iterations: int,
    min_snr: float,
    adc_threshold: float,
    acc: NDArray[np.float64],
    nchunks: int,
    roffset: NDArray[np.float32],
    rsigma: NDArray[np.float32],
    rthreshold: NDArray[np.float32],
    lthreshold: NDArray[np.float32],
) -> None:
    """Iterated per-radius mean/sigma of pixels strictly between the current thresholds;
    ``rthreshold = max(adc_threshold, mean + min_snr * sigma)``. ``acc``: (nchunks, nbins, 3)."""
    npix = data.shape[0]
    step = (npix + nchunks - 1) // nchunks
    rthreshold[:nbins] = np.float32(1e9)
    lthreshold[:nbins] = np.float32(-1e9)
    for _ in range(iterations):
        for c in prange(nchunks):
            _radial_chunk(data, rcode, acc[c], c * step, min(npix, (c + 1) * step), rthreshold, lthreshold)
        _update_thresholds(
            acc, nchunks, np.float32(min_snr), adc_threshold, roffset, rsigma, rthreshold, lthreshold
        )


@njit(cache=True, nogil=True)
def _sort_chunk(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    start: int,
    stop: int,
    cursor: NDArray[np.int64],
    buf: NDArray[np.float32],
) -> None:
    data = data[start:stop]
    rcode = rcode[start:stop]
    for p in range(data.shape[0]):
        r = rcode[p]
        if r >= 0:
            v = np.float32(data[p])
            # non-finite values are never inside the thresholds; FLT_MAX is not either and
            # keeps the masked sums of _bin_stats finite (NaN * 0 would be NaN)
            buf[cursor[r]] = v if np.isfinite(v) else FLT_MAX
            cursor[r] += 1


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _masked_sums(values: NDArray[np.float32], lo: np.float32, hi: np.float32) -> tuple[float, float, float]:
    """Sum, sum of squares and count of the values strictly between ``lo`` and ``hi``.

    Branch-free with reassociation allowed, so it vectorizes; comparisons keep IEEE
    semantics (no 'nnan'/'ninf' flags). Values must be finite (see ``_sort_chunk``).
    """
    total = 0.0
    total2 = 0.0
    count = 0.0
    for i in range(values.shape[0]):
        v = values[i]
        keep = np.float64((v < hi) & (v > lo))
        x = np.float64(v)
        total += x * keep
        total2 += x * x * keep
        count += keep
    return total, total2, count


@njit(cache=True, nogil=True)
def _bin_stats(
    values: NDArray[np.float32],
    iterations: int,
    min_snr: np.float32,
    adc_threshold: np.float32,
) -> tuple[np.float32, np.float32, np.float32]:
    """peakfinder8's iterated statistics of one radius bin -> (offset, sigma, threshold)."""
    hi = np.float32(1e9)
    lo = np.float32(-1e9)
    offset = np.float32(0.0)
    sigma = np.float32(0.0)
    for _ in range(iterations):
        total, total2, count = _masked_sums(values, lo, hi)
        if count == 0.0:
            offset = np.float32(0.0)
            sigma = np.float32(0.0)
            hi = FLT_MAX
            lo = FLT_MIN
        else:
            mean = total / count
            var = total2 / count - mean * mean
            offset = np.float32(mean)
            sigma = np.float32(math.sqrt(var) if var >= 0.0 else 0.0)
            hi = offset + min_snr * sigma
            if hi < adc_threshold:
                hi = adc_threshold
            lo = offset - min_snr * sigma
    return offset, sigma, hi


@njit(cache=True, nogil=True, parallel=True)
def group_by_radius(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    chunk_start: NDArray[np.int64],
    cursor: NDArray[np.int64],
    buf: NDArray[np.float32],
) -> None:
    """Copy the usable pixels into ``buf`` grouped by radius bin, pixel order kept within a bin
    (``chunk_start[c, b]``: where block ``c`` starts writing bin ``b``). Blocks in parallel."""
    nchunks = chunk_start.shape[0]
    nbins = chunk_start.shape[1]
    npix = data.shape[0]
    step = (npix + nchunks - 1) // nchunks
    for c in prange(nchunks):
        for b in range(nbins):
            cursor[c, b] = chunk_start[c, b]
        _sort_chunk(data, rcode, c * step, min(npix, (c + 1) * step), cursor[c], buf)


@njit(cache=True, nogil=True, parallel=True)
def grouped_statistics(
    buf: NDArray[np.float32],
    bin_start: NDArray[np.int64],
    iterations: int,
    min_snr: float,
    adc_threshold: float,
    roffset: NDArray[np.float32],
    rsigma: NDArray[np.float32],
    rthreshold: NDArray[np.float32],
) -> None:
    """All iterations of each radius bin on its grouped, cache-resident values; bins in
    parallel. Same statistics as :func:`radial_thresholds` (up to float64 summation order)."""
    nbins = bin_start.shape[0] - 1
    snr = np.float32(min_snr)
    adc = np.float32(adc_threshold)
    for b in prange(nbins):
        offset, sigma, hi = _bin_stats(buf[bin_start[b]: bin_start[b + 1]], iterations, snr, adc)
        roffset[b] = offset
        rsigma[b] = sigma
        rthreshold[b] = hi


@njit(cache=True, nogil=True)
def _candidates_chunk(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    rthreshold: NDArray[np.float32],
    width: int,
    asic_ny: int,
    asic_nx: int,
    start: int,
    stop: int,
    cand: NDArray[np.int32],
) -> int:
    k = start
    chunk = data[start:stop]
    codes = rcode[start:stop]
    for i in range(chunk.shape[0]):
        r = codes[i]
        if r < 0:
            continue
        if np.float32(chunk[i]) > rthreshold[r]:
            p = start + i
            pfs = (p % width) % asic_nx
            pss = (p // width) % asic_ny
            if pfs >= 1 and pfs < asic_nx - 1 and pss >= 1 and pss < asic_ny - 1:
                cand[k] = p
                k += 1
    return k - start


@njit(cache=True, nogil=True, parallel=True)
def candidates(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    rthreshold: NDArray[np.float32],
    width: int,
    asic_ny: int,
    asic_nx: int,
    nchunks: int,
    cand: NDArray[np.int32],
    counts: NDArray[np.int64],
) -> None:
    """Seed pixels: usable, above their radius threshold, not on a panel's border rows/columns.

    Chunk ``c`` writes its seeds, in pixel order, to ``cand[start_c:start_c + counts[c]]``.
    """
    npix = data.shape[0]
    step = (npix + nchunks - 1) // nchunks
    for c in prange(nchunks):
        counts[c] = _candidates_chunk(
            data, rcode, rthreshold, width, asic_ny, asic_nx, c * step, min(npix, (c + 1) * step), cand
        )


@njit(cache=True, nogil=True)
def _radius_of(code: int) -> int:
    return code if code >= 0 else -1 - code


@njit(cache=True, nogil=True)
def grow_and_measure(
    data: NDArray,  # type: ignore[type-arg]
    rcode: NDArray[np.int32],
    width: int,
    asic_ny: int,
    asic_nx: int,
    roffset: NDArray[np.float32],
    rthreshold: NDArray[np.float32],
    seeds: NDArray[np.int32],
    pixmap: NDArray[np.uint8],
    queue: NDArray[np.int32],
    touched: NDArray[np.int32],
    min_pix: int,
    max_pix: int,
    local_bg_radius: int,
    min_snr: float,
    max_num_peaks: int,
    out: NDArray[np.float32],
) -> int:
    """Flood-fill each seed (8-connected, within its panel) and apply peakfinder8's tests.

    Writes accepted peaks to ``out[i] = (fs, ss, intensity, npix, max, snr, sigma, background)``
    and returns the number of peaks found (which may exceed ``max_num_peaks``; only that
    many are written). Resets ``pixmap`` before returning.
    """
    ntouched = 0
    npeaks = 0
    ring = 2 * local_bg_radius
    for si in range(seeds.shape[0]):
        seed = seeds[si]
        if pixmap[seed] != 0:
            continue
        sfs = seed % width
        sss = seed // width
        fs0 = (sfs // asic_nx) * asic_nx
        ss0 = (sss // asic_ny) * asic_ny
        # --- grow the region of above-threshold pixels (breadth first)
        pixmap[seed] = 1
        touched[ntouched] = seed
        ntouched += 1
        queue[0] = seed
        n = 1
        head = 0
        sum_i = 0.0
        sum_fs = 0.0
        sum_ss = 0.0
        while head < n:
            p = queue[head]
            head += 1
            pfs = p % width
            pss = p // width
            v = np.float32(data[p])
            ci = v - roffset[_radius_of(rcode[p])]
            sum_i += ci
            sum_fs += ci * pfs
            sum_ss += ci * pss
            for dss in range(-1, 2):
                qss = pss + dss
                if qss < ss0 or qss >= ss0 + asic_ny:
                    continue
                for dfs in range(-1, 2):
                    qfs = pfs + dfs
                    if qfs < fs0 or qfs >= fs0 + asic_nx:
                        continue
                    q = qss * width + qfs
                    if pixmap[q] != 0:
                        continue
                    code = rcode[q]
                    if code < 0:
                        continue
                    if np.float32(data[q]) > rthreshold[code]:
                        pixmap[q] = 1
                        touched[ntouched] = q
                        ntouched += 1
                        queue[n] = q
                        n += 1
        if n < min_pix or n > max_pix:
            continue
        if abs(sum_i) < 1e-10:
            continue
        cfs = int(np.rint(sum_fs / abs(sum_i)))
        css = int(np.rint(sum_ss / abs(sum_i)))
        # --- local background in a disc of radius 2 * local_bg_radius around the centroid
        bsum = 0.0
        bsum2 = 0.0
        nb = 0
        bmax = 0.0
        for dss in range(-ring, ring):
            qss = css + dss
            if qss < ss0 or qss >= ss0 + asic_ny:
                continue
            for dfs in range(-ring, ring):
                qfs = cfs + dfs
                if qfs < fs0 or qfs >= fs0 + asic_nx:
                    continue
                if math.sqrt(dfs * dfs + dss * dss) > ring:
                    continue
                q = qss * width + qfs
                code = rcode[q]
                if code < 0 or pixmap[q] != 0:
                    continue
                v = np.float32(data[q])
                if v < rthreshold[code]:
                    nb += 1
                    fv = float(v)
                    bsum += fv
                    bsum2 += fv * fv
                    if fv > bmax:
                        bmax = fv
        if nb > 0:
            offset = bsum / nb
            var = bsum2 / nb - offset * offset
            sigma = math.sqrt(var) if var >= 0.0 else 0.01
        else:
            cidx = min(max(css, 0), rcode.shape[0] // width - 1) * width + min(max(cfs, 0), width - 1)
            offset = np.float64(roffset[_radius_of(rcode[cidx])])
            sigma = 0.01
        # --- re-integrate with the local background, centroid weighted by raw values
        tot = 0.0
        tot_raw = 0.0
        wfs = 0.0
        wss = 0.0
        pmax = 0.0
        for k in range(n):
            p = queue[k]
            raw = np.float64(np.float32(data[p]))
            cur = raw - offset
            tot += cur
            tot_raw += raw
            wfs += raw * (p % width)
            wss += raw * (p // width)
            if cur > pmax:
                pmax = cur
        if abs(tot_raw) < 1e-10:
            continue
        com_fs = wfs / abs(tot_raw)
        com_ss = wss / abs(tot_raw)
        snr = tot / sigma if abs(sigma) > 1e-10 else 0.0
        if snr < min_snr:
            continue
        if pmax < bmax - offset:
            continue
        if com_fs < fs0 or com_fs > fs0 + asic_nx - 1 or com_ss < ss0 or com_ss > ss0 + asic_ny - 1:
            continue
        for k in range(n):
            pixmap[queue[k]] = 2
        if npeaks < max_num_peaks:
            out[npeaks, 0] = com_fs
            out[npeaks, 1] = com_ss
            out[npeaks, 2] = tot
            out[npeaks, 3] = n
            out[npeaks, 4] = pmax
            out[npeaks, 5] = snr
            out[npeaks, 6] = sigma
            out[npeaks, 7] = offset
        npeaks += 1
    for k in range(ntouched):
        pixmap[touched[k]] = 0
    return npeaks
