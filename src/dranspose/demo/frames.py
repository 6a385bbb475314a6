"""The demo detector: a STINS series whose frames show a bright spot circling over Poisson
background, so the demo's curves (sum, maximum, peak position) and its preview image visibly
move in the live viewer. Deterministic (fixed seed); cheap enough for hundreds of frames/s
(the background comes from a small pool, the spot is added in a small window)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from dranspose.protocols import stins

SPOT_SIGMA = 3.0  # pixels


def spot_frames(n: int, shape: Sequence[int] = (256, 256), dtype: Any = "uint16", period: int = 1000,
                seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` frames: background (Poisson, mean 2) plus a Gaussian spot on a circle, one turn
    every ``period`` frames, its height modulated twice per turn."""
    h, w = int(shape[0]), int(shape[1])
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    pool = [rng.poisson(2.0, size=(h, w)).astype(dt) for _ in range(8)]
    half = int(4 * SPOT_SIGMA)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    radius = 0.3 * min(h, w)
    top = float(np.iinfo(dt).max) if dt.kind in "ui" else math.inf
    for i in range(n):
        phase = 2 * math.pi * i / max(period, 1)
        cy, cx = h / 2 + radius * math.sin(phase), w / 2 + radius * math.cos(phase)
        height = 400.0 * (1.25 + math.sin(2 * phase))
        frame = pool[i % len(pool)].copy()
        iy, ix = round(cy), round(cx)
        spot = height * np.exp(-((yy + iy - cy) ** 2 + (xx + ix - cx) ** 2) / (2 * SPOT_SIGMA**2))
        y0, y1, x0, x1 = max(iy - half, 0), min(iy + half + 1, h), max(ix - half, 0), min(ix + half + 1, w)
        window = frame[y0:y1, x0:x1].astype(np.float64) + spot[y0 - iy + half:y1 - iy + half, x0 - ix + half:x1 - ix + half]
        frame[y0:y1, x0:x1] = np.minimum(window, top).astype(dt)
        yield frame


def demo_stins(n: int, shape: Sequence[int] = (256, 256), dtype: Any = "uint16", period: int = 1000) -> Iterator[list[bytes]]:
    """The multipart messages of one STINS series of :func:`spot_frames`: header, ``n``
    images, end."""
    yield stins.encode_header(0)
    for i, frame in enumerate(spot_frames(n, shape, dtype, period)):
        yield stins.encode_image(i + 1, i, frame)
    yield stins.encode_end(n + 1)
