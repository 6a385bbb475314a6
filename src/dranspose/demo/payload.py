"""A small analysis in the shape users write (COMPAT §2): worker and reducer classes."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dranspose.event import EventData, ResultData
from dranspose.parameters import FloatParameter, ParameterBase
from dranspose.protocols import stins
from dranspose.protocols.base import Kind


class DemoWorker:
    """Sum, maximum and peak position of every frame; a preview image on ticks."""

    def __init__(self, **kwargs: Any) -> None:
        self.frames = 0

    @staticmethod
    def describe_parameters() -> list[ParameterBase]:
        return [FloatParameter(name="demo_threshold", description="count pixels above this value", default=100.0)]

    def get_tick_interval(self, parameters: Any) -> float:
        return 0.5

    def process_event(self, event: EventData, parameters: Any, tick: bool = False) -> dict[str, Any] | None:
        for name, stream in event.streams.items():
            if stream.typ != "STINS":
                continue
            message = stins.decode(stream.frames)
            if message.kind is not Kind.DATA or message.data is None:
                return {"kind": message.kind.value, "stream": name}
            image = message.data
            self.frames += 1
            flat = int(np.argmax(image))
            threshold = parameters["demo_threshold"].value
            out = {
                "kind": "data",
                "sum": float(image.sum(dtype=np.float64)),
                "max": float(image.flat[flat]),
                "peak": np.unravel_index(flat, image.shape),
                "above": int((image > threshold).sum()),
            }
            if tick:
                out["preview"] = np.array(image)
            return out
        return None


class DemoReducer:
    """Publishes one value per event, in event order, plus the latest preview."""

    def __init__(self, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {
            "sum": np.zeros(0),
            "max": np.zeros(0),
            "peak_y": np.zeros(0, dtype=np.int64),
            "peak_x": np.zeros(0, dtype=np.int64),
            "_attrs": {"description": "dranspose demo: per-frame statistics"},
        }
        self._rows: dict[int, tuple[float, float, int, int]] = {}
        self.started = time.time()

    def process_result(self, result: ResultData, parameters: Any = None) -> None:
        payload = result.payload
        if not isinstance(payload, dict):
            return
        if payload.get("kind") == "data":
            self._rows[result.event_number] = (payload["sum"], payload["max"], int(payload["peak"][0]), int(payload["peak"][1]))
            if "preview" in payload:
                self.publish["preview"] = payload["preview"]
                self.publish["preview_attrs"] = {"event_number": result.event_number}

    def timer(self) -> float:
        if self._rows:
            rows = [self._rows[k] for k in sorted(self._rows)]
            table = np.array(rows, dtype=np.float64)
            self.publish["sum"] = table[:, 0]
            self.publish["max"] = table[:, 1]
            self.publish["peak_y"] = table[:, 2].astype(np.int64)
            self.publish["peak_x"] = table[:, 3].astype(np.int64)
            self.publish["_attrs"] = {"description": "dranspose demo: per-frame statistics", "frames": len(rows)}
            # the same sums as an NXdata group: plotted against the event numbers
            self.publish["scan"] = {
                "_attrs": {"NX_class": "NXdata", "signal": "sum", "axes": ["frame"]},
                "sum": self.publish["sum"],
                "frame": np.array(sorted(self._rows), dtype=np.int64),
            }
        return 0.5

    def finish(self, parameters: Any = None) -> None:
        self.timer()
