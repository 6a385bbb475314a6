"""Credits of a scan's workers: one array per count, indexed by worker, and each worker's
place (:class:`WorkerSlot`) reading and writing its own entry. Pure, no I/O; owned by
:class:`dranspose.core.scan.Scan`."""

from __future__ import annotations

import numpy as np


class Ledger:
    """Credits and in-flight counts of every worker of a scan, by worker index, as arrays: the
    fast path reads the free credits of all workers in one operation. Owned by the scan; each
    :class:`WorkerSlot` reads and writes its own entry."""

    def __init__(self) -> None:
        self.capacity = np.zeros(8, dtype=np.int64)
        self.in_flight = np.zeros(8, dtype=np.int64)

    def ensure(self, n: int) -> None:
        """Room for worker indices ``0 .. n-1`` (grown by doubling; entries kept)."""
        if n > len(self.capacity):
            size = max(n, 2 * len(self.capacity))
            self.capacity = np.concatenate([self.capacity, np.zeros(size - len(self.capacity), dtype=np.int64)])
            self.in_flight = np.concatenate([self.in_flight, np.zeros(size - len(self.in_flight), dtype=np.int64)])

    def free(self, live: np.ndarray) -> np.ndarray:
        """Free credits of workers ``0 .. len(live)-1`` (0 where not ``live``)."""
        n = len(live)
        free: np.ndarray = np.where(live, np.maximum(self.capacity[:n] - self.in_flight[:n], 0), 0)
        return free


class _InLedger:
    """An int of a :class:`WorkerSlot` kept in its ledger's array of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.array = name

    def __get__(self, slot: "WorkerSlot", owner: type | None = None) -> int:
        return int(getattr(slot._ledger, self.array)[slot._i])

    def __set__(self, slot: "WorkerSlot", value: int) -> None:
        getattr(slot._ledger, self.array)[slot._i] = value


class WorkerSlot:
    """One worker's place in a scan; ``capacity`` (credits) and ``in_flight`` live in the
    scan's :class:`Ledger` at the worker's index."""

    __slots__ = ("name", "tags", "alive", "finished", "results_sent", "service_uuid", "missing", "_ledger", "_i")

    def __init__(self, name: str, tags: frozenset[str], capacity: int, ledger: Ledger, index: int, *,
                 alive: bool = True, service_uuid: str | None = None) -> None:
        ledger.ensure(index + 1)
        self._ledger, self._i = ledger, index
        self.name, self.tags, self.alive = name, tags, alive
        self.capacity, self.in_flight = capacity, 0
        self.finished = False
        self.results_sent = 0
        self.service_uuid = service_uuid  # tells a restarted worker from a late heartbeat of a dead one
        self.missing = False  # heartbeat lost, within the grace time: keeps its place

    capacity = _InLedger()  # credits
    in_flight = _InLedger()  # events assigned and not yet reported done

    def free(self) -> int:
        return self.capacity - self.in_flight

    def __repr__(self) -> str:
        return (f"WorkerSlot({self.name!r}, capacity={self.capacity}, in_flight={self.in_flight}, alive={self.alive}, "
                f"finished={self.finished}, missing={self.missing})")
