"""Tutorial worker: parse STINS frames and reduce every image to a few numbers."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dranspose.event import EventData
from dranspose.middlewares import stream1
from dranspose.parameters import StrParameter

logger = logging.getLogger(__name__)


class TutorialWorker:
    """Per image: its frame number, total counts, maximum, and the column profile."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.filename: str | None = None

    @staticmethod
    def describe_parameters() -> list[StrParameter]:
        return [StrParameter(name="stream", default="xrd", description="name of the STINS stream")]

    def process_event(self, event: EventData, parameters: Any = None, tick: bool = False) -> Any:
        name = parameters["stream"].value if parameters and "stream" in parameters else "xrd"
        if name not in event.streams:
            return None
        msg = stream1.parse(event.streams[name])
        htype = getattr(msg, "htype", None)
        if htype == "header":
            self.filename = msg.filename
            return {"kind": "start", "filename": msg.filename}
        if htype == "image":
            img = np.asarray(msg.data, dtype=np.float64)
            return {
                "kind": "image",
                "frame": int(msg.frame),
                "sum": float(img.sum()),
                "max": float(img.max()),
                "profile": img.sum(axis=0),
            }
        return {"kind": "end"}

    def finish(self, parameters: Any = None) -> None:
        logger.info("tutorial worker done with %s", self.filename)
