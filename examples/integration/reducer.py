"""Collect the 1D patterns of the integration worker into a stack published over HDF REST.

``publish`` layout: ``radial`` (1D), ``patterns`` (n x npt), ``sigma`` (same shape),
``frames`` (EIGER frame numbers) and ``events`` (event numbers), rows in arrival order while
the scan runs and sorted by event number after ``finish``; ``patterns_attrs`` holds the unit.
Rows go into a buffer that doubles when full, so each result costs O(npt).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dranspose.event import ResultData


class Reducer:
    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                 state: Any = None, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {}
        self._n = 0
        self._patterns = np.zeros((0, 0))
        self._sigma = np.zeros((0, 0))
        self._meta = np.zeros((0, 2), dtype=np.int64)  # (event, frame)

    def _grow(self, npt: int) -> None:
        cap = max(16, 2 * self._patterns.shape[0])
        patterns = np.full((cap, npt), np.nan)
        sigma = np.full((cap, npt), np.nan)
        meta = np.zeros((cap, 2), dtype=np.int64)
        if self._n:
            patterns[: self._n] = self._patterns[: self._n]
            sigma[: self._n] = self._sigma[: self._n]
            meta[: self._n] = self._meta[: self._n]
        self._patterns, self._sigma, self._meta = patterns, sigma, meta

    def _publish(self) -> None:
        n = self._n
        self.publish["patterns"] = self._patterns[:n]
        self.publish["sigma"] = self._sigma[:n]
        self.publish["events"] = self._meta[:n, 0]
        self.publish["frames"] = self._meta[:n, 1]

    def process_result(self, result: ResultData, parameters: dict[str, Any] | None = None) -> None:
        payload = result.payload
        if not isinstance(payload, dict) or "intensity" not in payload:
            return
        intensity = np.asarray(payload["intensity"])
        if self._n == self._patterns.shape[0] or self._patterns.shape[1] != intensity.size:
            if self._n and self._patterns.shape[1] != intensity.size:
                raise ValueError(f"pattern length changed from {self._patterns.shape[1]} to {intensity.size}")
            self._grow(intensity.size)
        self._patterns[self._n] = intensity
        if payload.get("sigma") is not None:
            self._sigma[self._n] = payload["sigma"]
        self._meta[self._n] = (int(result.event_number), int(payload.get("frame", -1)))
        self._n += 1
        self.publish["radial"] = np.asarray(payload["radial"])
        self.publish["patterns_attrs"] = {"unit": str(payload.get("unit", ""))}
        self._publish()

    def finish(self, parameters: dict[str, Any] | None = None) -> None:
        order = np.argsort(self._meta[: self._n, 0], kind="stable")
        self._patterns[: self._n] = self._patterns[order]
        self._sigma[: self._n] = self._sigma[order]
        self._meta[: self._n] = self._meta[order]
        self._publish()
