"""Completion reports a Redis restart may have lost, sent again.

A report written to Redis just before Redis dies (and restarts empty) is gone unless the
controller read it first. Workers and the reducer keep what they reported over the last few
seconds (:class:`RecentReports`) and send it again when Redis's ``run_id`` changes
(:class:`RedisRestarts`); the controller applies repeated completions idempotently.
"""

from __future__ import annotations

import collections
from typing import Any

import redis

CHECK_INTERVAL_S = 0.5
KEEP_S = 5.0
MAX_ITEMS = 200_000  # items kept at most (the oldest go first)


class RedisRestarts:
    """Notices that the Redis server was replaced (its ``run_id`` changed), checking at most
    every ``CHECK_INTERVAL_S``."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._checked = float("-inf")

    def restarted(self, client: "redis.Redis", now: float) -> bool:
        if now - self._checked < CHECK_INTERVAL_S:
            return False
        self._checked = now
        try:
            run_id = str(client.info("server").get("run_id"))
        except redis.RedisError:
            return False
        changed = self.run_id is not None and run_id != self.run_id
        self.run_id = run_id
        return changed


class RecentReports:
    """Items (events, pairs) reported in the last ``KEEP_S`` seconds, at most ``MAX_ITEMS``."""

    def __init__(self) -> None:
        self._batches: collections.deque[tuple[float, list[Any]]] = collections.deque()
        self._count = 0

    def add(self, now: float, items: list[Any]) -> None:
        if items:
            self._batches.append((now, list(items)))
            self._count += len(items)
        self._prune(now)

    def take_all(self, now: float) -> list[Any]:
        """Everything still kept (oldest first); the store is emptied."""
        self._prune(now)
        out = [item for _t, items in self._batches for item in items]
        self._batches.clear()
        self._count = 0
        return out

    def _prune(self, now: float) -> None:
        while self._batches and (now - self._batches[0][0] > KEEP_S or self._count > MAX_ITEMS):
            _t, items = self._batches.popleft()
            self._count -= len(items)
