"""Find Bragg peaks in every EIGER_LEGACY image and return the peak list and count.

Parameters: ``method`` (``peakfinder8`` or ``dispersion``), ``poni`` (PONI file content: the
beam centre for peakfinder8's radial statistics; default: the sample eiger1m.poni),
``adc_threshold``, ``min_snr``, ``min_pix_count``, ``max_pix_count``, ``local_bg_radius``,
``stream`` (default ``eigerxes``). The finder is built on the header (event 0, which carries
the pixel mask) and cached in the worker's ``context``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dranspose.event import EventData
from dranspose.kernels import DispersionSpotFinder, Geometry, PeakFinder8
from dranspose.parameters import FileParameter, FloatParameter, IntParameter, StrParameter

from dranspose.protocols import eiger_legacy
from dranspose.protocols.base import Kind

SAMPLE_PONI = (Path(__file__).parent / "eiger1m.poni").read_text()
DEFAULTS: dict[str, Any] = {
    "method": "peakfinder8", "poni": SAMPLE_PONI, "adc_threshold": 10.0, "min_snr": 6.0,
    "min_pix_count": 2, "max_pix_count": 40, "local_bg_radius": 3, "stream": "eigerxes",
}


def _value(parameters: dict[str, Any] | None, name: str) -> Any:
    value = getattr((parameters or {}).get(name), "value", None)
    return DEFAULTS[name] if value in (None, "") else value


class Worker:
    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                 state: Any = None, **kwargs: Any) -> None:
        self.context = context if context is not None else {}
        self.parameters = parameters or {}
        self.finder: PeakFinder8 | DispersionSpotFinder | None = None

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [
            StrParameter(name="method", default="peakfinder8", description="peakfinder8 or dispersion"),
            FileParameter(name="poni", default=SAMPLE_PONI, description="pyFAI PONI file (beam centre)"),
            FloatParameter(name="adc_threshold", default=10.0),
            FloatParameter(name="min_snr", default=6.0),
            IntParameter(name="min_pix_count", default=2),
            IntParameter(name="max_pix_count", default=40),
            IntParameter(name="local_bg_radius", default=3),
            StrParameter(name="stream", default="eigerxes"),
        ]

    def _finder(self, parameters: dict[str, Any], shape: tuple[int, int], mask: np.ndarray | None) -> Any:
        names = ("method", "poni", "adc_threshold", "min_snr", "min_pix_count", "max_pix_count", "local_bg_radius")
        values = tuple(_value(parameters, n) for n in names)
        key = ("finder", values, shape, hashlib.sha1(b"" if mask is None else mask.tobytes()).hexdigest())
        cache = self.context.setdefault("kernels", {})
        if key not in cache:
            cache.clear()
            method, poni, adc, snr, min_pix, max_pix, bg_radius = values
            if method == "dispersion":
                cache[key] = DispersionSpotFinder(shape, mask=mask, min_spot_size=int(min_pix),
                                                  max_spot_size=int(max_pix), warmup=(np.uint32,))
            elif method == "peakfinder8":
                radius = Geometry.from_poni_text(poni).radius_pixels(shape)
                cache[key] = PeakFinder8(radius, mask=mask, adc_threshold=float(adc), min_snr=float(snr),
                                         min_pix_count=int(min_pix), max_pix_count=int(max_pix),
                                         local_bg_radius=int(bg_radius), warmup=(np.uint32,))
            else:
                raise ValueError(f"unknown hit-finding method {method!r}")
        return cache[key]

    def process_event(self, event: EventData, parameters: dict[str, Any] | None = None, tick: bool = False) -> Any:
        parameters = parameters if parameters is not None else self.parameters
        stream = event.streams.get(str(_value(parameters, "stream")))
        if stream is None or stream.typ != "EIGER_LEGACY":
            return None
        message = eiger_legacy.decode(stream.frames)
        if message.kind is Kind.START and message.header is not None:
            config = message.header.config or {}
            mask = message.header.arrays.get("pixelmask")
            if "y_pixels_in_detector" in config:
                shape = (int(config["y_pixels_in_detector"]), int(config["x_pixels_in_detector"]))
                self.finder = self._finder(parameters, shape, None if mask is None else mask != 0)
            return None
        if message.kind is not Kind.DATA or message.data is None:
            return None
        frame, image = int(message.meta["frame"]), message.data
        shape = (image.shape[0], image.shape[1])
        if self.finder is None or self.finder.shape != shape:
            self.finder = self._finder(parameters, shape, None)
        if image.dtype == np.uint32:
            # EIGER marks gaps and defective pixels with 2**32 - 1: treat them as 0 counts
            image = np.where(image == np.iinfo(np.uint32).max, np.uint32(0), image)
        peaks = self.finder.find(image)
        return {"frame": frame, "npeaks": int(self.finder.num_found), "peaks": peaks}
