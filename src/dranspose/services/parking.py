"""Units an ingester could not deliver because their worker is unreachable, kept a bounded
time (and bounded in bytes) in case the controller re-routes the event to a live worker.

A worker that died before its frames were sent did not receive them: parking keeps its event
alive so only events whose frames the dead worker really received fail. Whatever is dropped
(too old, over the byte bound) is returned to the caller to report as undeliverable.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Any

from dranspose.core.pairing import unit_bytes

__all__ = ["ParkingLot", "Parked", "unit_bytes"]


@dataclass
class Parked:
    worker: str
    event: int
    stream: str
    frames: list[Any]
    nbytes: int
    since: float


class ParkingLot:
    """(worker, event, stream) -> frames, oldest first."""

    def __init__(self, max_bytes: int, max_age: float) -> None:
        self.max_bytes, self.max_age = max_bytes, max_age
        self.items: collections.OrderedDict[tuple[str, int, str], Parked] = collections.OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.items)

    def park(self, worker: str, event: int, stream: str, frames: list[Any]) -> list[tuple[str, int]]:
        """Keep a unit; returns (worker, event) pairs dropped to stay within the byte bound."""
        size = unit_bytes(frames)
        self.items[(worker, event, stream)] = Parked(worker, event, stream, frames, size, time.monotonic())
        self.nbytes += size
        dropped = []
        while self.nbytes > self.max_bytes and self.items:
            dropped.append(self._drop_oldest())
        return dropped

    def take(self, worker: str, event: int, stream: str) -> Parked | None:
        item = self.items.pop((worker, event, stream), None)
        if item is not None:
            self.nbytes -= item.nbytes
        return item

    def take_worker(self, worker: str) -> list[Parked]:
        """Everything parked for ``worker`` (it became reachable), oldest first."""
        keys = [k for k in self.items if k[0] == worker]
        return [item for k in keys if (item := self.take(*k)) is not None]

    def expire(self, now: float | None = None) -> list[tuple[str, int]]:
        """Drop units parked longer than ``max_age``; returns their (worker, event) pairs."""
        now = time.monotonic() if now is None else now
        dropped = []
        while self.items and now - next(iter(self.items.values())).since >= self.max_age:
            dropped.append(self._drop_oldest())
        return dropped

    def clear(self) -> None:
        self.items.clear()
        self.nbytes = 0

    def _drop_oldest(self) -> tuple[str, int]:
        _key, item = self.items.popitem(last=False)
        self.nbytes -= item.nbytes
        return item.worker, item.event
