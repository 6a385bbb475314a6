"""What the scan hands out: assignments one event at a time, runs of simple events as arrays
(:class:`FastRun`), re-routes; and how new constraints are spread over the workers' free
credits. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


# One assigned event: (event number, {stream: worker names}); an empty tuple means discard.
Assignment = tuple[int, dict[str, tuple[str, ...]]]
# One re-routed event: (event, {stream: new worker names} for the streams the dead worker had,
# workers added by the re-route).
Reroute = tuple[int, dict[str, tuple[str, ...]], tuple[str, ...]]


def spread(avail: np.ndarray, need: int) -> np.ndarray:
    """Up to ``need`` worker indices taking credits from ``avail`` (free credits per worker):
    round by round, in each round the workers with more free credits first."""
    total = int(avail.sum())
    need = min(need, total)
    if need <= 0:
        return np.empty(0, dtype=np.int64)
    rounds = 1
    while int(np.minimum(avail, rounds).sum()) < need:
        rounds *= 2
    reps = np.minimum(avail, rounds)
    w_of = np.repeat(np.arange(len(avail)), reps)
    rank = np.arange(len(w_of)) - np.repeat(np.cumsum(reps) - reps, reps)
    order = np.lexsort((-avail[w_of], rank))
    return w_of[order[:need]]


@dataclass
class FastRun:
    """Events ``first .. first + len(target) - 1`` assigned in one go: event ``first + i`` goes
    to worker ``workers[target[i]]`` on every stream of ``stream_sets[sset[i]]``."""

    first: int
    target: np.ndarray  # int32 index into workers
    sset: np.ndarray  # int32 index into stream_sets
    workers: list[str]
    stream_sets: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.target)

    def expand(self) -> list[Assignment]:
        names, sets = self.workers, self.stream_sets
        return [
            (self.first + i, {s: (names[w],) for s in sets[k]})
            for i, (w, k) in enumerate(zip(self.target.tolist(), self.sset.tolist()))
        ]


Run = Union[FastRun, list[Assignment]]  # one assignment batch: a fast run or single events
