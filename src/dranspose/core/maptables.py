"""The compiled trigger map as arrays for the scan's fast path, and the scan's per-event
scratch arrays. Pure, no I/O; owned by :class:`dranspose.core.scan.Scan`."""

from __future__ import annotations

import numpy as np

from dranspose.core.triggermap import CompiledMap, ConstraintKey, Slot


class MapTables:
    """The compiled map as arrays for the fast path. An event is *simple* when every stream it
    has goes to one constrained virtual worker, the same for all its streams (the common
    "event i -> constraint i" map); other events (broadcasts, discards, several virtual
    workers) take the general path. Every constraint key gets a code (its binding's index)."""

    def __init__(self, cmap: CompiledMap) -> None:
        n = len(cmap)
        self.code_of: dict[ConstraintKey, int] = {}
        self.tags: list[frozenset[str]] = []  # tag-set index -> tags
        tag_index: dict[frozenset[str], int] = {}
        self.stream_sets: list[tuple[str, ...]] = []
        set_index: dict[tuple[str, ...], int] = {}
        simple, sset, tagset = [-1] * n, [0] * n, [0] * n  # lists while filled (a numpy item costs 3x a list's)
        code_of = self.code_of
        for e, event in enumerate(cmap.events):
            first: Slot | None = None
            ok = bool(event)
            for slots in event.values():
                for slot in slots:
                    if slot.constraint is not None and slot.constraint not in code_of:
                        code_of[slot.constraint] = len(code_of)
                if ok and (len(slots) != 1 or slots[0].constraint is None or (first is not None and slots[0] is not first)):
                    ok = False
                elif ok:
                    first = slots[0]
            if ok and first is not None and first.constraint is not None:
                key = tuple(event)
                k = set_index.get(key)
                if k is None:
                    k = set_index[key] = len(self.stream_sets)
                    self.stream_sets.append(key)
                t = tag_index.get(first.tags)
                if t is None:
                    t = tag_index[first.tags] = len(self.tags)
                    self.tags.append(first.tags)
                simple[e], sset[e], tagset[e] = code_of[first.constraint], k, t
        self.simple, self.sset, self.tagset = (np.array(a, dtype=np.int32) for a in (simple, sset, tagset))
        self.bound = np.full(max(1, len(code_of)), -1, dtype=np.int32)  # code -> worker index
        self.owner = np.full(n, -1, dtype=np.int32)  # open fast event -> worker index
        self.mark = np.zeros(n, dtype=bool)  # scratch of Scan.workers_done, all False between calls
        self.slot = np.empty(n, dtype=np.int32)  # scratch of distinct(): any content between calls
        # results of fast events, reported without a pass through the per-event bookkeeping:
        self.wait = np.full(n, -1, dtype=np.int32)  # done by this worker, its result not confirmed yet
        self.early = np.zeros(n, dtype=bool)  # open, but the reducer already confirmed its result
        self.reduced = np.zeros(n, dtype=bool)  # the current reducer holds a result of this event

    def distinct(self, events: np.ndarray) -> np.ndarray:
        """``events`` (numbers of this scan) with repeats dropped, in no particular order: each
        position writes its index to ``slot``; of repeated numbers exactly the one position
        whose write stayed reads its own index back (whichever write numpy keeps)."""
        if len(events) < 2:
            return events
        pos = np.arange(len(events), dtype=np.int32)
        self.slot[events] = pos
        kept: np.ndarray = events[self.slot[events] == pos]
        return kept
