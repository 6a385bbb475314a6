"""Synthesized detector streams: STINS, Eiger SIMPLON v1 (legacy), DECTRIS stream v2.

Each ``synth_*`` function yields the multipart messages (lists of bytes) of one series: a
start/header message, ``n`` images, an end message (PROTOCOLS §3, §4, §5). Pixel data come
from a small pool of pseudo-random frames (``distinct`` of them, Poisson counts like a real
detector, fixed seed) that are encoded/compressed once and reused, so the generator itself is
cheap enough to drive benchmarks. Every message is new ``bytes``; blobs are shared between
messages (immutable).
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

import cbor2
import numpy as np

from dranspose.protocols import eiger_legacy, stins, stream2
from dranspose.protocols._wire import dumps_json

__all__ = ["frame_pool", "synth_stins", "synth_eiger_legacy", "synth_stream2"]


def frame_pool(shape: Sequence[int], dtype: Any = "uint16", distinct: int = 4, seed: int = 0) -> list[np.ndarray]:
    """``distinct`` deterministic frames of Poisson counts (mean 1) clipped to ``dtype``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    out = []
    for _ in range(max(distinct, 1)):
        counts = rng.poisson(1.0, size=tuple(shape))
        if dt.kind in "ui":
            counts = np.minimum(counts, np.iinfo(dt).max)
        out.append(np.ascontiguousarray(counts.astype(dt)))
    return out


def _compact(obj: dict[str, Any], sort: bool = False) -> bytes:
    return dumps_json(obj, sort_keys=sort)


def synth_stins(
    n: int,
    shape: Sequence[int] = (512, 512),
    dtype: Any = "uint16",
    compression: str = "none",
    *,
    filename: str = "",
    distinct: int = 4,
    msg_start: int = 0,
) -> Iterator[list[bytes]]:
    """A STINS series: header, ``n`` two-part images, ``series_end`` (msg_number counts up)."""
    pool = frame_pool(shape, dtype, distinct)
    templates = [stins.encode_image(0, 0, arr, compression) for arr in pool]
    metas = [json.loads(t[0]) for t in templates]
    msg = msg_start
    yield stins.encode_header(msg, filename)
    for i in range(n):
        msg += 1
        k = i % len(templates)
        meta = dict(metas[k], msg_number=msg, frame=i)
        yield [_compact(meta), templates[k][1]]
    yield stins.encode_end(msg + 1)


def synth_eiger_legacy(
    n: int,
    shape: Sequence[int] = (512, 512),
    dtype: Any = "uint32",
    compression: str = "bslz4",
    *,
    series: int = 1,
    header_detail: str = "basic",
    distinct: int = 4,
) -> Iterator[list[bytes]]:
    """A SIMPLON stream v1 series (PROTOCOLS §4) from :mod:`dranspose.protocols.eiger_legacy`:
    header (1 or 2 parts), ``n`` 4-part images (``hash`` = MD5 of part 2), end.
    ``shape`` is the numpy (rows, cols) shape."""
    dt = np.dtype(dtype)
    if dt.name not in ("uint8", "uint16", "uint32"):
        raise ValueError(f"Eiger images are uint8/16/32, not {dt.name}")
    if compression not in ("bslz4", "none"):
        raise ValueError(f"compression must be bslz4 or none, not {compression!r}")
    rows, cols = shape
    config = {
        "bit_depth_image": dt.itemsize * 8,
        "compression": "bslz4",
        "count_time": 0.001,
        "frame_time": 0.001,
        "nimages": n,
        "ntrigger": 1,
        "x_pixels_in_detector": cols,
        "y_pixels_in_detector": rows,
    }
    yield eiger_legacy.encode_header(series, config, header_detail=header_detail)
    encoding = None if compression == "bslz4" else "<"
    templates = [eiger_legacy.encode_image(series, 0, arr, encoding) for arr in frame_pool(shape, dt, distinct)]
    metas = [json.loads(t[0]) for t in templates]
    period = 1_000_000  # ns
    for i in range(n):
        k = i % len(templates)
        _, dmeta, blob, _ = templates[k]
        meta = _compact(dict(metas[k], frame=i), sort=True)  # hash covers dmeta only: unchanged
        config_part = _compact(
            {"htype": "dconfig-1.0", "real_time": period, "start_time": i * period, "stop_time": (i + 1) * period},
            sort=True,
        )
        yield [meta, dmeta, blob, config_part]
    yield eiger_legacy.encode_end(series)


def synth_stream2(
    n: int,
    shape: Sequence[int] = (512, 512),
    dtype: Any = "uint32",
    compression: str = "bslz4",
    *,
    series_id: int = 1,
    distinct: int = 4,
) -> Iterator[list[bytes]]:
    """A DECTRIS stream v2 series (PROTOCOLS §5) from :mod:`dranspose.protocols.stream2`:
    single-part CBOR messages (tag 55799), images as tag 40 typed arrays, ``bslz4`` through
    tag 56500 or uncompressed."""
    dt = np.dtype(dtype)
    if dt.name not in ("uint8", "uint16", "uint32"):
        raise ValueError(f"stream v2 images are uint8/16/32, not {dt.name}")
    if compression not in ("bslz4", "none"):
        raise ValueError(f"compression must be bslz4 or none, not {compression!r}")
    rows, cols = shape
    unique = f"SYNTH{series_id:021d}"[:26]
    yield stream2.encode_start(
        series_id,
        ["threshold_1"],
        series_unique_id=unique,
        count_time=0.001,
        frame_time=0.001,
        image_dtype=dt.name,
        image_size_x=cols,
        image_size_y=rows,
        number_of_images=n,
        threshold_energy={"threshold_1": 4000.0},
        user_data=json.dumps({"filename": ""}),
    )
    # Compress each distinct frame once; per message re-encode only the small CBOR envelope.
    data = [
        cbor2.loads(stream2.encode_image(series_id, 0, arr, compression, series_unique_id=unique)[0])["data"]
        for arr in frame_pool(shape, dt, distinct)
    ]
    step = _TIME_BASE // 1000
    for i in range(n):
        fields = {
            "type": "image",
            "series_id": series_id,
            "series_unique_id": unique,
            "image_id": i,
            "real_time": [step, _TIME_BASE],
            "series_date": cbor2.CBORTag(0, "2026-01-01T00:00:00.000+00:00"),
            "start_time": [i * step, _TIME_BASE],
            "stop_time": [(i + 1) * step, _TIME_BASE],
            "data": data[i % len(data)],
        }
        yield [cbor2.dumps(cbor2.CBORTag(55799, fields))]
    yield stream2.encode_end(series_id, series_unique_id=unique)


_TIME_BASE = 50_000_000
