"""Integrate every EIGER_LEGACY image to a 1D pattern with dranspose.kernels.

Parameters: ``poni`` (file content of a pyFAI PONI file; default: the sample eiger1m.poni),
``npt`` (radial bins), ``unit`` (``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``r_mm``), ``stream``
(the stream name, default ``eigerxes``). The integrator is built when the header arrives
(event 0: detector shape and pixel mask) and kept in the worker's ``context`` across scans,
so no frame pays for the geometry set-up or the JIT compilation.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dranspose.event import EventData
from dranspose.kernels import AzimuthalIntegrator, Geometry
from dranspose.parameters import FileParameter, IntParameter, StrParameter

from dranspose.protocols import eiger_legacy
from dranspose.protocols.base import Kind

log = logging.getLogger(__name__)
SAMPLE_PONI = (Path(__file__).parent / "eiger1m.poni").read_text()


def _value(parameters: dict[str, Any] | None, name: str, default: Any) -> Any:
    param = (parameters or {}).get(name)
    value = getattr(param, "value", None)
    return default if value in (None, "") else value


class Worker:
    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                 state: Any = None, **kwargs: Any) -> None:
        self.context = context if context is not None else {}
        self.parameters = parameters or {}
        self.integrator: AzimuthalIntegrator | None = None

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [
            FileParameter(name="poni", default=SAMPLE_PONI, description="pyFAI PONI file"),
            IntParameter(name="npt", default=1000, description="radial bins"),
            StrParameter(name="unit", default="q_nm^-1", description="radial unit"),
            StrParameter(name="stream", default="eigerxes", description="EIGER_LEGACY stream"),
        ]

    def _integrator(self, parameters: dict[str, Any], shape: tuple[int, int], mask: np.ndarray | None) -> AzimuthalIntegrator:
        poni = _value(parameters, "poni", SAMPLE_PONI)
        npt = int(_value(parameters, "npt", 1000))
        unit = str(_value(parameters, "unit", "q_nm^-1"))
        digest = hashlib.sha1(mask.tobytes() if mask is not None else b"").hexdigest()
        key = ("integrator", poni, npt, unit, shape, digest)
        cache = self.context.setdefault("kernels", {})
        if key not in cache:
            geometry = Geometry.from_poni_text(poni)
            cache.clear()  # keep one integrator per worker process
            # EIGER marks gaps and defective pixels with the dtype's maximum: reject them per frame
            cache[key] = AzimuthalIntegrator(geometry, shape, npt, unit, mask=mask, error_model="poisson",
                                             dummy=float(2**32 - 1), warmup=(np.uint32,))
        return cache[key]

    def process_event(self, event: EventData, parameters: dict[str, Any] | None = None, tick: bool = False) -> Any:
        parameters = parameters if parameters is not None else self.parameters
        stream = event.streams.get(str(_value(parameters, "stream", "eigerxes")))
        if stream is None or stream.typ != "EIGER_LEGACY":
            return None
        message = eiger_legacy.decode(stream.frames)
        if message.kind is Kind.START and message.header is not None:
            config = message.header.config or {}
            mask = message.header.arrays.get("pixelmask")
            if "y_pixels_in_detector" in config:
                shape = (int(config["y_pixels_in_detector"]), int(config["x_pixels_in_detector"]))
                bad = None if mask is None else (mask != 0)
                self.integrator = self._integrator(parameters, shape, bad)
            return None
        if message.kind is not Kind.DATA or message.data is None:
            return None
        frame, image = int(message.meta["frame"]), message.data
        if self.integrator is None or self.integrator.shape != image.shape:
            self.integrator = self._integrator(parameters, (image.shape[0], image.shape[1]), None)
        radial, intensity, sigma = self.integrator.integrate1d(image)
        return {"frame": frame, "radial": radial, "intensity": intensity, "sigma": sigma,
                "unit": self.integrator.unit.name}
