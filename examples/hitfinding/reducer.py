"""Publish the number of peaks per event, the hit flags and the hit rate.

``publish``: ``peak_counts`` and ``events`` (arrival order; sorted after ``finish``),
``hits`` (``peak_counts >= min_peaks``), ``hit_rate`` (float), ``_attrs`` with ``min_peaks``.
The parameter ``min_peaks`` (default 10) decides what a hit is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dranspose.event import ResultData
from dranspose.parameters import IntParameter


class Reducer:
    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
                 state: Any = None, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"peak_counts": np.zeros(0, dtype=np.int64), "hit_rate": 0.0}
        self._counts: list[int] = []
        self._events: list[int] = []
        self.min_peaks = self._min_peaks(parameters)

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [IntParameter(name="min_peaks", default=10, description="peaks needed for a hit")]

    @staticmethod
    def _min_peaks(parameters: dict[str, Any] | None) -> int:
        value = getattr((parameters or {}).get("min_peaks"), "value", None)
        return 10 if value is None else int(value)

    def _publish(self, order: np.ndarray | None = None) -> None:
        counts = np.array(self._counts, dtype=np.int64)
        events = np.array(self._events, dtype=np.int64)
        if order is not None:
            counts, events = counts[order], events[order]
        hits = counts >= self.min_peaks
        self.publish["peak_counts"] = counts
        self.publish["events"] = events
        self.publish["hits"] = hits
        self.publish["hit_rate"] = float(hits.mean()) if hits.size else 0.0
        self.publish["_attrs"] = {"min_peaks": self.min_peaks}

    def process_result(self, result: ResultData, parameters: dict[str, Any] | None = None) -> None:
        payload = result.payload
        if not isinstance(payload, dict) or "npeaks" not in payload:
            return
        if parameters is not None:
            self.min_peaks = self._min_peaks(parameters)
        self._counts.append(int(payload["npeaks"]))
        self._events.append(int(result.event_number))
        self._publish()

    def finish(self, parameters: dict[str, Any] | None = None) -> None:
        self._publish(np.argsort(np.array(self._events, dtype=np.int64), kind="stable"))
