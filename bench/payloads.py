"""Minimal payloads for the pipeline benchmark: the work is the pipeline, not the analysis."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class BenchWorker:
    """Returns the ingester's receive time of the event (``created_at``) and the byte count."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        created = event.created_at.timestamp() if event.created_at is not None else None
        size = sum(len(f) if isinstance(f, bytes) else f.buffer.nbytes for s in event.streams.values() for f in s.frames[1:])
        return (created, size, time.time())


class BenchReducer:
    """Keeps per-result latency (ingester receive -> process_result) and the byte count."""

    def __init__(self, **kwargs: Any) -> None:
        self.latencies: list[float] = []
        self.split: list[tuple[float, float]] = []  # (ingester -> worker, worker -> reducer)
        self.bytes = 0
        self.publish: dict[str, Any] = {"latency": np.zeros(0), "bytes": 0, "results": 0}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        t, size, at_worker = result.payload
        if t is not None:
            now = time.time()
            self.latencies.append(now - t)
            self.split.append((at_worker - t, now - at_worker))
        self.bytes += size

    def finish(self, parameters: Any = None) -> None:
        self.publish["latency"] = np.array(self.latencies)
        self.publish["latency_split"] = np.array(self.split).reshape(-1, 2)
        self.publish["bytes"] = self.bytes
        self.publish["results"] = len(self.latencies)
