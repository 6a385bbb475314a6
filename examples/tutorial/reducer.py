"""Tutorial reducer: collect per-image sums into a map and an average profile."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from dranspose.event import ResultData
from dranspose.parameters import IntParameter


class TutorialReducer:
    """Publishes ``sum`` (per frame), ``map`` (sums on a ``map_width`` wide grid), ``profile``."""

    def __init__(self, parameters: Any = None, **kwargs: Any) -> None:
        width = parameters["map_width"].value if parameters and "map_width" in parameters else 3
        self.width = max(int(width), 1)
        self.sums: dict[int, float] = {}
        self.profile_total: np.ndarray | None = None
        self.publish_rlock = threading.RLock()
        self.publish: dict[str, Any] = {"filename": "", "sum": np.zeros(0), "map": np.zeros((0, self.width))}
        self.finished = False

    @staticmethod
    def describe_parameters() -> list[IntParameter]:
        return [IntParameter(name="map_width", default=3, description="points per map row")]

    def process_result(self, result: ResultData, parameters: Any = None) -> None:
        payload = result.payload
        if payload["kind"] == "start":
            with self.publish_rlock:
                self.publish["filename"] = payload["filename"]
            return
        if payload["kind"] != "image":
            return
        self.sums[payload["frame"]] = payload["sum"]
        profile = payload["profile"]
        self.profile_total = profile if self.profile_total is None else self.profile_total + profile
        n = max(self.sums) + 1
        sums = np.zeros(n)
        for frame, value in self.sums.items():
            sums[frame] = value
        rows = -(-n // self.width)
        grid = np.zeros(rows * self.width)
        grid[:n] = sums
        with self.publish_rlock:
            self.publish["sum"] = sums
            self.publish["map"] = grid.reshape(rows, self.width)
            self.publish["profile"] = self.profile_total / len(self.sums)

    def finish(self, parameters: Any = None) -> None:
        self.finished = True
