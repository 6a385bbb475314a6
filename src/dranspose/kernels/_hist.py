"""Per-frame accumulation kernels (Numba, parallel, no allocation).

One pass over the pixels in ``nchunks`` contiguous blocks handed out dynamically (so a thread
preempted by another process does not hold the frame up), each block scattering into the
private histogram row of the thread running it, ``acc[numba.get_thread_id(), k, bin]`` (k: 0
signal, 1 variance, 2 norm, 3 count; one row per thread of the pool), then a parallel merge
over bins. Callers run the kernels with ``numba.parallel_chunksize(1)``. The data is read in its own dtype and converted per pixel to
float32 (pyFAI's data type); sums are float64.

Map layouts: ``scatter_single`` (one bin per pixel), ``scatter_run`` (1D, runs of adjacent
bins), ``scatter_grouped`` (2D bounding boxes, pixels grouped by footprint per block: see
``_lut.group_2d``) and ``scatter_multi`` (general pixel-major CSR). Scattered read-modify-writes
of float64 bins are what these loops spend their time on: the fast paths avoid per-pixel
branches (a mispredicted inner-loop exit costs more than the write) and interleave
independent walks so that writes to the same bin by neighbouring pixels overlap.

``dynamic`` selects whether norm and count are accumulated per frame (needed when pixels can
be rejected per frame: a dummy value, NaN in float data); otherwise the precomputed
per-bin norm and count are used. ``error_model``: 0 none, 1 variance array, 2 Poisson
(``var = max(1, I)``).

Thread-safety: the caller owns ``acc`` and the outputs; one call at a time per buffer set.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray


@njit(cache=True, nogil=True, inline="always")
def _rejected(v: np.float32, check_dummy: bool, dummy: np.float32, delta_dummy: np.float32) -> bool:
    if v != v:
        return True
    if check_dummy:
        if delta_dummy == 0.0:
            return bool(v == dummy)
        return bool(abs(v - dummy) <= delta_dummy)
    return False


@njit(cache=True, nogil=True)
def _zero(acc_c: NDArray[np.float64], dynamic: bool, error_model: int) -> None:
    acc_c[0, :] = 0.0
    if error_model != 0:
        acc_c[1, :] = 0.0
    if dynamic:
        acc_c[2, :] = 0.0
        acc_c[3, :] = 0.0


@njit(cache=True, nogil=True)
def _single_chunk(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    index: NDArray[np.int32],
    pixnorm: NDArray[np.float32],
    acc_c: NDArray[np.float64],
    start: int,
    stop: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: np.float32,
    delta_dummy: np.float32,
) -> None:
    # local slices: loop indices from 0 let Numba drop the negative-index checks
    data = data[start:stop]
    index = index[start:stop]
    pixnorm = pixnorm[start:stop]
    variance = variance[start:stop]  # empty (never read) without a variance array
    n = data.shape[0]
    sig = acc_c[0]
    var = acc_c[1]
    nrm = acc_c[2]
    cnt = acc_c[3]
    if not dynamic and error_model == 0:  # the common case, as a tight loop of its own
        for p in range(n):
            b = index[p]
            if b >= 0:
                sig[b] += np.float32(data[p])
        return
    if not dynamic and error_model == 2:
        for p in range(n):
            b = index[p]
            if b >= 0:
                v = np.float32(data[p])
                sig[b] += v
                var[b] += max(np.float32(1.0), v)
        return
    for p in range(n):
        b = index[p]
        if b < 0:
            continue
        v = np.float32(data[p])
        if dynamic:
            if _rejected(v, check_dummy, dummy, delta_dummy):
                continue
            nrm[b] += pixnorm[p]
            cnt[b] += 1.0
        sig[b] += v
        if error_model == 2:
            var[b] += max(np.float32(1.0), v)
        elif error_model == 1:
            var[b] += variance[p]


@njit(cache=True, nogil=True, parallel=True)
def scatter_single(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    index: NDArray[np.int32],
    pixnorm: NDArray[np.float32],
    acc: NDArray[np.float64],
    nchunks: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: float,
    delta_dummy: float,
) -> None:
    """Accumulate pixels that fall in exactly one bin (``index[p] < 0``: pixel unused)."""
    npix = data.shape[0]
    for t in prange(acc.shape[0]):
        _zero(acc[t], dynamic, error_model)
    step = (npix + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _single_chunk(
            data, variance, index, pixnorm, acc[numba.get_thread_id()], c * step, min(npix, (c + 1) * step),
            dynamic, error_model, check_dummy, np.float32(dummy), np.float32(delta_dummy),
        )


@njit(cache=True, nogil=True)
def _multi_chunk(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    ptr: NDArray[np.int64],
    bins: NDArray[np.int32],
    coefs: NDArray[np.float32],
    pixnorm: NDArray[np.float32],
    acc_c: NDArray[np.float64],
    start: int,
    stop: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: np.float32,
    delta_dummy: np.float32,
) -> None:
    data = data[start:stop]
    ptr = ptr[start:stop + 1]
    pixnorm = pixnorm[start:stop]
    variance = variance[start:stop]  # empty (never read) without a variance array
    sig = acc_c[0]
    var = acc_c[1]
    nrm = acc_c[2]
    cnt = acc_c[3]
    if not dynamic and error_model == 0:  # the common case, as a tight loop of its own
        for p in range(data.shape[0]):
            x = np.float64(np.float32(data[p]))
            for e in range(ptr[p], ptr[p + 1]):
                sig[bins[e]] += x * coefs[e]
        return
    for p in range(data.shape[0]):
        e0 = ptr[p]
        e1 = ptr[p + 1]
        if e0 == e1:
            continue
        v = np.float32(data[p])
        if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
            continue
        pv = np.float32(0.0)
        if error_model == 2:
            pv = np.float32(1.0) if v < 1.0 else v
        elif error_model == 1:
            pv = variance[p]
        pn = pixnorm[p]
        for e in range(e0, e1):
            b = bins[e]
            w = np.float64(coefs[e])
            sig[b] += v * w
            if error_model != 0:
                var[b] += pv * (w * w)
            if dynamic:
                nrm[b] += pn * w
                cnt[b] += w


@njit(cache=True, nogil=True, parallel=True)
def scatter_multi(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    ptr: NDArray[np.int64],
    bins: NDArray[np.int32],
    coefs: NDArray[np.float32],
    pixnorm: NDArray[np.float32],
    acc: NDArray[np.float64],
    nchunks: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: float,
    delta_dummy: float,
) -> None:
    """Accumulate split pixels: entries ``ptr[p]:ptr[p+1]`` of ``bins``/``coefs``."""
    npix = data.shape[0]
    for t in prange(acc.shape[0]):
        _zero(acc[t], dynamic, error_model)
    step = (npix + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _multi_chunk(
            data, variance, ptr, bins, coefs, pixnorm, acc[numba.get_thread_id()], c * step,
            min(npix, (c + 1) * step),
            dynamic, error_model, check_dummy, np.float32(dummy), np.float32(delta_dummy),
        )


@njit(cache=True, nogil=True)
def _run_chunk(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    bin0: NDArray[np.int32],
    weights: NDArray[np.float32],
    pixnorm: NDArray[np.float32],
    acc_c: NDArray[np.float64],
    start: int,
    stop: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: np.float32,
    delta_dummy: np.float32,
) -> None:
    data = data[start:stop]
    bin0 = bin0[start:stop]
    weights = weights[start:stop]
    pixnorm = pixnorm[start:stop]
    variance = variance[start:stop]  # empty (never read) without a variance array
    sig = acc_c[0]
    var = acc_c[1]
    nrm = acc_c[2]
    cnt = acc_c[3]
    width = weights.shape[1]
    if not dynamic and error_model == 0:  # the common case, as a tight loop of its own
        for p in range(data.shape[0]):
            b = bin0[p]
            if b >= 0:
                x = np.float64(np.float32(data[p]))
                for k in range(width):
                    sig[b + k] += x * weights[p, k]
        return
    for p in range(data.shape[0]):
        b = bin0[p]
        if b < 0:
            continue
        v = np.float32(data[p])
        if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
            continue
        pv = np.float32(0.0)
        if error_model == 2:
            pv = np.float32(1.0) if v < 1.0 else v
        elif error_model == 1:
            pv = variance[p]
        pn = pixnorm[p]
        for k in range(width):
            w = np.float64(weights[p, k])
            sig[b + k] += v * w
            if error_model != 0:
                var[b + k] += pv * (w * w)
            if dynamic:
                nrm[b + k] += pn * w
                cnt[b + k] += w


@njit(cache=True, nogil=True, parallel=True)
def scatter_run(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    bin0: NDArray[np.int32],
    weights: NDArray[np.float32],
    pixnorm: NDArray[np.float32],
    acc: NDArray[np.float64],
    nchunks: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: float,
    delta_dummy: float,
) -> None:
    """Accumulate pixels split over a run of adjacent bins ``bin0[p] + k`` with weights
    ``weights[p, k]`` (zero-padded; ``bin0 < 0``: unused; histograms have spare bins)."""
    npix = data.shape[0]
    for t in prange(acc.shape[0]):
        _zero(acc[t], dynamic, error_model)
    step = (npix + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _run_chunk(
            data, variance, bin0, weights, pixnorm, acc[numba.get_thread_id()], c * step,
            min(npix, (c + 1) * step),
            dynamic, error_model, check_dummy, np.float32(dummy), np.float32(delta_dummy),
        )


@njit(cache=True, nogil=True, parallel=True)
def finalize(
    acc: NDArray[np.float64],
    nchunks: int,
    static_norm: NDArray[np.float64],
    static_count: NDArray[np.float64],
    dynamic: bool,
    error_model: int,
    empty: float,
    intensity: NDArray,  # type: ignore[type-arg]
    sigma: NDArray,  # type: ignore[type-arg]
) -> None:
    """Merge the first ``nchunks`` private histogram rows; write intensity and, with an error
    model, sigma for the first ``intensity.shape[0]`` bins."""
    nbins = intensity.shape[0]
    if not dynamic and error_model == 0:
        # the common case as a loop of its own (no aliasing with ``sigma``, no per-bin branches
        # on the mode): an order of magnitude faster on 180,000 bins
        for b in prange(nbins):
            s = acc[0, 0, b]
            for c in range(1, nchunks):
                s += acc[c, 0, b]
            n = static_norm[b]
            intensity[b] = s / n if (static_count[b] > 0.0 and n != 0.0) else empty
        return
    for b in prange(nbins):
        s = 0.0
        v = 0.0
        n = 0.0
        k = 0.0
        for c in range(nchunks):
            s += acc[c, 0, b]
        if error_model != 0:
            for c in range(nchunks):
                v += acc[c, 1, b]
        if dynamic:
            for c in range(nchunks):
                n += acc[c, 2, b]
                k += acc[c, 3, b]
        else:
            n = static_norm[b]
            k = static_count[b]
        if k > 0.0 and n != 0.0:
            intensity[b] = s / n
            if error_model != 0:
                sigma[b] = np.sqrt(v) / n
        else:
            intensity[b] = empty
            if error_model != 0:
                sigma[b] = empty


@njit(cache=True, nogil=True)
def static_sums(
    ptr: NDArray[np.int64],
    bins: NDArray[np.int32],
    coefs: NDArray[np.float32],
    pixnorm: NDArray[np.float32],
    nbins: int,
):  # type: ignore[no-untyped-def]
    """Per-bin norm and count of all mapped pixels (computed once per geometry and mask)."""
    norm = np.zeros(nbins, dtype=np.float64)
    count = np.zeros(nbins, dtype=np.float64)
    npix = ptr.shape[0] - 1
    for p in range(npix):
        pn = pixnorm[p]
        for e in range(ptr[p], ptr[p + 1]):
            w = np.float64(coefs[e])
            norm[bins[e]] += pn * w
            count[bins[e]] += w
    return norm, count


@njit(cache=True, nogil=True, inline="always")
def _pixel_var(v: np.float32, variance: NDArray[np.float32], o: int, error_model: int) -> np.float32:
    """Variance of a pixel of value ``v`` at offset ``o`` under the error model."""
    if error_model == 2:
        return np.float32(1.0) if v < 1.0 else v
    if error_model == 1:
        return variance[o]
    return np.float32(0.0)


@njit(cache=True, nogil=True, inline="always")
def _one_single(d: NDArray, code: NDArray[np.uint32], sig: NDArray[np.float64], i: int,  # type: ignore[type-arg]
                shift: np.uint32, mask: np.uint32) -> None:
    c = code[i]
    sig[np.int64(c >> shift)] += np.float64(np.float32(d[c & mask]))


@njit(cache=True, nogil=True, inline="always")
def _one_pair(d: NDArray, code: NDArray[np.uint32], w: NDArray[np.float32], sig: NDArray[np.float64],  # type: ignore[type-arg]
              i: int, shift: np.uint32, mask: np.uint32, step: int) -> None:
    c = code[i]
    b = np.int64(c >> shift)
    x = np.float64(np.float32(d[c & mask]))
    sig[b] += x * w[i, 0]
    sig[b + step] += x * w[i, 1]


@njit(cache=True, nogil=True, inline="always")
def _pairs(d: NDArray, code: NDArray[np.uint32], w: NDArray[np.float32], sig: NDArray[np.float64],  # type: ignore[type-arg]
           a: int, z: int, shift: np.uint32, mask: np.uint32, step: int) -> None:
    """Pairs ``a:z`` of a list (bins ``b`` and ``b + step``), as four interleaved walks."""
    m = (z - a) // 4
    for i in range(a, a + m):
        _one_pair(d, code, w, sig, i, shift, mask, step)
        _one_pair(d, code, w, sig, i + m, shift, mask, step)
        _one_pair(d, code, w, sig, i + 2 * m, shift, mask, step)
        _one_pair(d, code, w, sig, i + 3 * m, shift, mask, step)
    for i in range(a + 4 * m, z):
        _one_pair(d, code, w, sig, i, shift, mask, step)


@njit(cache=True, nogil=True)
def _grouped_block(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    grp,  # type: ignore[no-untyped-def]
    pixnorm: NDArray[np.float32],
    acc_c: NDArray[np.float64],
    blk: int,
    shift: int,
    n0: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: np.float32,
    delta_dummy: np.float32,
) -> None:
    starts, s_code, r_code, r_w, a_code, a_w, q_code, q_w, x_off, x_ptr, x_bin, x_w = grp
    lo = blk << shift
    hi = min(data.shape[0], lo + (1 << shift))
    d = data[lo:hi]
    pixnorm = pixnorm[lo:hi]
    variance = variance[lo:hi]  # empty (never read) without a variance array
    sig = acc_c[0]
    var = acc_c[1]
    nrm = acc_c[2]
    cnt = acc_c[3]
    sh = np.uint32(shift)
    mask = np.uint32((1 << shift) - 1)
    if not dynamic and error_model == 0:
        # the common case: four interleaved walks through each list, so that the
        # read-modify-writes of neighbouring pixels (often the same bin) overlap in the CPU
        a, z = starts[0, blk], starts[0, blk + 1]
        m = (z - a) // 4
        for i in range(a, a + m):
            _one_single(d, s_code, sig, i, sh, mask)
            _one_single(d, s_code, sig, i + m, sh, mask)
            _one_single(d, s_code, sig, i + 2 * m, sh, mask)
            _one_single(d, s_code, sig, i + 3 * m, sh, mask)
        for i in range(a + 4 * m, z):
            _one_single(d, s_code, sig, i, sh, mask)
        _pairs(d, r_code, r_w, sig, starts[1, blk], starts[1, blk + 1], sh, mask, 1)
        _pairs(d, a_code, a_w, sig, starts[2, blk], starts[2, blk + 1], sh, mask, n0)
        for i in range(starts[3, blk], starts[3, blk + 1]):
            c = q_code[i]
            b = np.int64(c >> sh)
            x = np.float64(np.float32(d[c & mask]))
            sig[b] += x * q_w[i, 0]
            sig[b + 1] += x * q_w[i, 1]
            sig[b + n0] += x * q_w[i, 2]
            sig[b + n0 + 1] += x * q_w[i, 3]
        for i in range(starts[4, blk], starts[4, blk + 1]):
            x = np.float64(np.float32(d[x_off[i]]))
            for e in range(x_ptr[i], x_ptr[i + 1]):
                sig[x_bin[e]] += x * x_w[e]
        return
    # general case (error models, per-frame rejection), one entry at a time. The accumulation
    # is written out in each loop: through an inlined helper, loops that also hold the
    # rejection test compiled 4-5x slower (measured), even with ``dynamic`` false.
    for i in range(starts[0, blk], starts[0, blk + 1]):
        c = s_code[i]
        o = c & mask
        v = np.float32(d[o])
        if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
            continue
        b = np.int64(c >> sh)
        sig[b] += v
        if error_model != 0:
            var[b] += _pixel_var(v, variance, o, error_model)
        if dynamic:
            nrm[b] += pixnorm[o]
            cnt[b] += 1.0
    for k in range(2):
        code, ws, step = (r_code, r_w, 1) if k == 0 else (a_code, a_w, n0)
        for i in range(starts[1 + k, blk], starts[1 + k, blk + 1]):
            c = code[i]
            o = c & mask
            v = np.float32(d[o])
            if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
                continue
            b = np.int64(c >> sh)
            b2 = b + step
            w = np.float64(ws[i, 0])
            w2 = np.float64(ws[i, 1])
            sig[b] += v * w
            sig[b2] += v * w2
            if error_model != 0:
                pv = _pixel_var(v, variance, o, error_model)
                var[b] += pv * (w * w)
                var[b2] += pv * (w2 * w2)
            if dynamic:
                pn = pixnorm[o]
                nrm[b] += pn * w
                nrm[b2] += pn * w2
                cnt[b] += w
                cnt[b2] += w2
    for i in range(starts[3, blk], starts[3, blk + 1]):
        c = q_code[i]
        o = c & mask
        v = np.float32(d[o])
        if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
            continue
        pv = _pixel_var(v, variance, o, error_model)
        pn = pixnorm[o] if dynamic else np.float32(0.0)
        b0 = np.int64(c >> sh)
        for t in range(4):
            b = b0 + (t & 1) + (t >> 1) * n0
            w = np.float64(q_w[i, t])
            sig[b] += v * w
            if error_model != 0:
                var[b] += pv * (w * w)
            if dynamic:
                nrm[b] += pn * w
                cnt[b] += w
    for i in range(starts[4, blk], starts[4, blk + 1]):
        o = x_off[i]
        v = np.float32(d[o])
        if dynamic and _rejected(v, check_dummy, dummy, delta_dummy):
            continue
        pv = _pixel_var(v, variance, o, error_model)
        pn = pixnorm[o] if dynamic else np.float32(0.0)
        for e in range(x_ptr[i], x_ptr[i + 1]):
            b = x_bin[e]
            w = np.float64(x_w[e])
            sig[b] += v * w
            if error_model != 0:
                var[b] += pv * (w * w)
            if dynamic:
                nrm[b] += pn * w
                cnt[b] += w


@njit(cache=True, nogil=True, parallel=True)
def scatter_grouped(
    data: NDArray,  # type: ignore[type-arg]
    variance: NDArray[np.float32],
    grp,  # type: ignore[no-untyped-def]
    shift: int,
    n0: int,
    pixnorm: NDArray[np.float32],
    acc: NDArray[np.float64],
    nchunks: int,
    dynamic: bool,
    error_model: int,
    check_dummy: bool,
    dummy: float,
    delta_dummy: float,
) -> None:
    """Accumulate a 2D map regrouped by ``_lut.group_2d`` (blocks of ``2**shift`` pixels, one
    unit of work each; ``nchunks`` is ignored: the blocks are the chunks)."""
    for t in prange(acc.shape[0]):
        _zero(acc[t], dynamic, error_model)
    nblk = grp[0].shape[1] - 1
    for blk in prange(nblk):
        _grouped_block(
            data, variance, grp, pixnorm, acc[numba.get_thread_id()], blk, shift, n0,
            dynamic, error_model, check_dummy, np.float32(dummy), np.float32(delta_dummy),
        )
