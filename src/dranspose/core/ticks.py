"""The tick rule (pure): about one event per ``interval`` seconds, across all workers, is
processed with ``tick=True``. Each worker keeps its own clock and ticks at most once per
``interval * n_workers`` seconds, so no coordination between workers is needed. The live
worker and replay use this one rule."""

from __future__ import annotations

import time
from typing import Callable


class TickClock:
    """``clock()`` -> whether the event about to be processed gets ``tick=True``.

    ``interval`` None means the worker wants no ticks. The first event always ticks.
    """

    def __init__(self, interval: float | None, n_workers: int = 1, now: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.period = None if interval is None else max(0.0, float(interval)) * max(1, int(n_workers))
        self._now = now
        self._last: float | None = None

    def __call__(self) -> bool:
        if self.period is None:
            return False
        t = self._now()
        if self._last is None or t - self._last >= self.period:
            self._last = t
            return True
        return False
