"""Scan state: constraint binding, credit-based assignment and progress (pure, no I/O).

The controller owns one :class:`Scan` per trigger map. Events in (workers joining/leaving,
completion batches, reducer counts), instructions out (assignment batches, "finish now").

Credits: a worker advertises ``capacity``; an event is assigned only while every worker it
needs has fewer than ``capacity`` events in flight. Events are assigned strictly in order, so a
stalled worker stalls assignment (backpressure) rather than reordering the stream.
A constraint is bound to a worker the first time it is assigned and stays bound for the map; if
that worker dies, later events of the constraint are bound anew and the dead worker's
unfinished events are counted as failed, never silently lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable, Union

import numpy as np

from dranspose.core.triggermap import CompiledMap, ConstraintKey, Slot


class Phase(enum.Enum):
    RUNNING = "running"  # events being assigned and processed
    FINISHING = "finishing"  # every event done; workers run finish()
    REDUCING = "reducing"  # workers finished; waiting for the reducer's results and finish()
    FINISHED = "finished"


@dataclass
class WorkerSlot:
    name: str
    tags: frozenset[str]
    capacity: int
    in_flight: int = 0
    alive: bool = True
    finished: bool = False
    results_sent: int = 0
    service_uuid: str | None = None  # tells a restarted worker from a late heartbeat of a dead one

    def free(self) -> int:
        return self.capacity - self.in_flight


# One assigned event: (event number, {stream: worker names}); an empty tuple means discard.
Assignment = tuple[int, dict[str, tuple[str, ...]]]


def _spread(avail: np.ndarray, need: int) -> np.ndarray:
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


class _Tables:
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
        simple = np.full(n, -1, dtype=np.int32)
        sset = np.zeros(n, dtype=np.int32)
        tagset = np.zeros(n, dtype=np.int32)
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
        self.simple, self.sset, self.tagset = simple, sset, tagset
        self.bound = np.full(max(1, len(code_of)), -1, dtype=np.int32)  # code -> worker index
        self.owner = np.full(n, -1, dtype=np.int32)  # open fast event -> worker index


@dataclass
class Scan:
    cmap: CompiledMap
    workers: dict[str, WorkerSlot] = field(default_factory=dict)
    next_event: int = 0
    pending: dict[int, set[str]] = field(default_factory=dict)  # general-path event -> workers not done yet
    completed: int = 0
    failed: set[int] = field(default_factory=set)
    cancelled: int = 0
    phase: Phase = Phase.RUNNING
    stopped: bool = False
    results_processed: dict[str, int] = field(default_factory=dict)  # per worker, from reducer
    reducer_finished: bool = False
    waiting_for_workers: bool = False  # the next event needs a worker no live one can be
    failure_reason: str | None = None  # why the scan ended as failed (see give_up)
    held_back: set[str] = field(default_factory=set)  # workers whose credits stopped assignment
    window: int = 4096  # events looked at per fast run at most

    def __post_init__(self) -> None:
        self._t = _Tables(self.cmap)
        self._names: list[str] = []  # worker index -> name (indices are never reused)
        self._index: dict[str, int] = {}
        self._fast_open = 0  # open events of the fast path (owner >= 0)
        self._version = 0  # bumped when a worker joins or leaves
        self._cache: tuple[int, list[WorkerSlot | None], np.ndarray, np.ndarray] | None = None

    # ---- membership
    def _idx(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._names)
            self._names.append(name)
        return i

    @property
    def bindings(self) -> dict[ConstraintKey, str]:
        """Constraint -> bound worker (a view; the binding table is an array)."""
        bound = self._t.bound
        return {k: self._names[bound[c]] for k, c in self._t.code_of.items() if bound[c] >= 0}

    def _bound_name(self, key: ConstraintKey) -> str | None:
        w = int(self._t.bound[self._t.code_of[key]])
        return self._names[w] if w >= 0 else None

    def add_worker(self, name: str, tags: Iterable[str], capacity: int, service_uuid: str | None = None) -> None:
        self._idx(name)
        self._version += 1
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            self.workers[name] = WorkerSlot(name, frozenset(tags), max(1, capacity), service_uuid=service_uuid)
        else:
            slot.tags, slot.capacity = frozenset(tags), max(1, capacity)

    def set_capacity(self, name: str, capacity: int) -> None:
        """New credits for a live worker (flow control); in-flight events stay."""
        slot = self.workers.get(name)
        if slot is not None and slot.alive:
            slot.capacity = max(1, capacity)

    def remove_worker(self, name: str) -> list[int]:
        """A worker died: its unfinished events fail; returns their numbers."""
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            return []
        slot.alive = False
        slot.in_flight = 0
        self._version += 1
        lost = []
        for event, waiting in list(self.pending.items()):
            if name in waiting:
                waiting.discard(name)
                self.failed.add(event)
                lost.append(event)
                if not waiting:
                    del self.pending[event]
        w = self._index[name]
        t = self._t
        mine = np.flatnonzero(t.owner == w)
        if len(mine):
            t.owner[mine] = -1
            self._fast_open -= len(mine)
            lost.extend(mine.tolist())
            self.failed.update(mine.tolist())
        t.bound[t.bound == w] = -1
        self._advance_phase()
        return sorted(lost)

    def alive_workers(self) -> list[WorkerSlot]:
        return [w for w in self.workers.values() if w.alive]

    def open_events(self) -> dict[int, set[str]]:
        """Every assigned event not completed yet -> the workers it waits for."""
        out = {e: set(ws) for e, ws in self.pending.items()}
        owner = self._t.owner
        for e in np.flatnonzero(owner >= 0).tolist():
            out[e] = {self._names[owner[e]]}
        return out

    # ---- assignment: general path
    def _eligible(self, slot: Slot) -> list[WorkerSlot]:
        return [w for w in self.workers.values() if w.alive and slot.tags <= w.tags]

    def _resolve(self, event: int) -> dict[str, tuple[str, ...]] | None:
        """Targets of ``event`` per stream, or None when a needed worker has no credit or
        no live worker can serve a slot yet (then ``waiting_for_workers``). Binds new constraints."""
        targets: dict[str, tuple[str, ...]] = {}
        new_bindings: dict[ConstraintKey, str] = {}
        planned: dict[str, int] = {}
        for stream, slots in self.cmap.events[event].items():
            names: list[str] = []
            for slot in slots:
                if slot.constraint is None:
                    chosen = [w.name for w in self._eligible(slot)]
                else:
                    bound = self._bound_name(slot.constraint) or new_bindings.get(slot.constraint)
                    if bound is None or not self.workers[bound].alive:
                        candidates = self._eligible(slot)
                        if not candidates:
                            chosen = []
                        else:
                            best = max(candidates, key=lambda w: (w.free() - planned.get(w.name, 0), -w.in_flight))
                            new_bindings[slot.constraint] = best.name
                            chosen = [best.name]
                    else:
                        chosen = [bound]
                if not chosen:
                    self.waiting_for_workers = True  # wait for a worker to join (see give_up)
                    return None
                for name in chosen:
                    if name not in names:
                        names.append(name)
                        planned.setdefault(name, 1)
            targets[stream] = tuple(names)
        short = [name for name in planned if self.workers[name].free() < 1]
        if short:
            self.held_back.update(short)
            return None
        for key, name in new_bindings.items():
            self._t.bound[self._t.code_of[key]] = self._index[name]
        return targets

    def _assign_one(self) -> Assignment | None:
        targets = self._resolve(self.next_event)
        if targets is None:
            return None
        workers = {name for names in targets.values() for name in names}
        for name in workers:
            self.workers[name].in_flight += 1
        if workers:
            self.pending[self.next_event] = workers
        elif any(self.cmap.events[self.next_event][s] for s in targets):
            self.failed.add(self.next_event)  # needed a worker, none alive can serve it
        else:
            self.completed += 1  # only discards / nothing to process
        self.next_event += 1
        return (self.next_event - 1, targets)

    # ---- assignment: fast path (arrays, cost per event independent of the number of workers)
    def _membership(self) -> tuple[list[WorkerSlot | None], np.ndarray, np.ndarray]:
        """(slot per worker index, alive mask, tag sets every alive worker serves); cached
        until a worker joins or leaves."""
        if self._cache is None or self._cache[0] != self._version:
            slots = [self.workers.get(n) for n in self._names]
            live = np.array([s is not None and s.alive for s in slots], dtype=bool)
            alive_tags = [s.tags for s in slots if s is not None and s.alive]
            common = frozenset.intersection(*alive_tags) if alive_tags else frozenset()
            tag_ok = np.array([tags <= common for tags in self._t.tags], dtype=bool)
            self._cache = (self._version, slots, live, tag_ok)
        return self._cache[1], self._cache[2], self._cache[3]

    def _fast_run(self, limit: int) -> tuple[FastRun | None, bool]:
        """Assign the simple events from ``next_event`` on, as many as credits allow; also
        says whether credits stopped it (None, False: not a simple event here)."""
        t, start = self._t, self.next_event
        stop = min(len(self.cmap), start + min(limit, self.window))
        codes = t.simple[start:stop]
        nw = len(self._names)
        slots, live, tag_ok = self._membership()
        if not live.any() or len(codes) == 0 or codes[0] < 0:
            return None, False
        ok = (codes >= 0) & tag_ok[t.tagset[start:stop]]
        k = len(codes) if ok.all() else int(np.argmin(ok))
        if k == 0:
            return None, False
        codes = codes[:k]
        free = np.fromiter((max(0, s.free()) if s is not None and s.alive else 0 for s in slots), dtype=np.int64, count=nw)
        tgt = t.bound[codes].astype(np.int64)
        tgt[(tgt >= 0) & ~live[np.maximum(tgt, 0)]] = -1  # bound to a dead worker: bind anew
        unbound = tgt < 0
        new_codes = np.empty(0, dtype=np.int64)
        new_workers = np.empty(0, dtype=np.int64)
        if unbound.any():
            ucodes, first_pos, inverse = np.unique(codes[unbound], return_index=True, return_inverse=True)
            order = np.argsort(first_pos, kind="stable")  # constraints in order of appearance
            used = np.bincount(tgt[~unbound], minlength=nw)
            avail = np.maximum(free - used, 0)
            alloc = _spread(avail, len(ucodes))  # workers with the most free credits first
            chosen = np.full(len(ucodes), -1, dtype=np.int64)
            chosen[order[: len(alloc)]] = alloc
            tgt[unbound] = chosen[inverse.reshape(-1)]
            new_codes, new_workers = ucodes.astype(np.int64), chosen
        # strict order: stop at the first event without a worker or without a credit
        cut = k if (tgt >= 0).all() else int(np.argmin(tgt >= 0))
        blocked: set[int] = set()
        if cut < k:  # no worker with a free credit for a new constraint
            blocked = {w for w in np.flatnonzero(live & (free - np.bincount(tgt[:cut], minlength=nw) < 1)).tolist()}
        if cut:
            head = tgt[:cut]
            srt = np.argsort(head, kind="stable")
            st = head[srt]
            group_start = np.flatnonzero(np.r_[True, st[1:] != st[:-1]])
            sizes = np.diff(np.r_[group_start, cut])
            rank = np.empty(cut, dtype=np.int64)
            rank[srt] = np.arange(cut) - np.repeat(group_start, sizes)
            over = rank >= free[head]
            if over.any():
                cut = int(np.argmax(over))
                blocked = {int(head[cut])}
        self.held_back.update(self._names[w] for w in blocked)
        if cut == 0:
            return None, bool(blocked)
        tgt = tgt[:cut]
        if len(new_codes):  # commit the bindings the assigned prefix uses
            used_codes = np.isin(new_codes, codes[:cut])
            t.bound[new_codes[used_codes]] = new_workers[used_codes]
        t.owner[start : start + cut] = tgt
        counts = np.bincount(tgt, minlength=nw)
        for w in np.flatnonzero(counts).tolist():
            self.workers[self._names[w]].in_flight += int(counts[w])
        self._fast_open += cut
        self.next_event += cut
        return FastRun(start, tgt.astype(np.int32), t.sset[start : start + cut], self._names, t.stream_sets), bool(blocked)

    def assign_runs(self, limit: int = 1 << 30) -> list[Run]:
        """Assign as many upcoming events as credits allow (at most ``limit``), as runs."""
        out: list[Run] = []
        self.waiting_for_workers = False
        if self.stopped:
            return out
        total = 0
        single: list[Assignment] = []
        while self.next_event < len(self.cmap) and total < limit:
            run, blocked = self._fast_run(limit - total)
            if run is not None:
                if single:
                    out.append(single)
                    single = []
                out.append(run)
                total += len(run)
            if blocked:
                break
            if run is not None:
                continue
            one = self._assign_one()
            if one is None:
                break
            single.append(one)
            total += 1
        if single:
            out.append(single)
        self._advance_phase()
        return out

    def assign(self, limit: int = 1 << 30) -> list[Assignment]:
        """Assign as many upcoming events as credits allow (at most ``limit``), one by one."""
        out: list[Assignment] = []
        for run in self.assign_runs(limit):
            out.extend(run.expand() if isinstance(run, FastRun) else run)
        return out

    def give_up(self, reason: str) -> list[int]:
        """No usable worker came in time: every unassigned event fails and the scan goes on
        to its end with ``reason``. Returns the failed event numbers."""
        lost = list(range(self.next_event, len(self.cmap)))
        self.failed.update(lost)
        self.next_event = len(self.cmap)
        self.waiting_for_workers = False
        self.failure_reason = reason
        self._advance_phase()
        return lost

    # ---- completion
    def _close_fast(self, name: str, events: Iterable[int]) -> tuple[np.ndarray, list[int]]:
        """Close ``name``'s open fast events among ``events``; returns (closed, the others)."""
        ev = np.asarray(events if isinstance(events, (list, tuple, np.ndarray)) else list(events), dtype=np.int64)
        w = self._index.get(name)
        if w is None or ev.size == 0:
            return np.empty(0, dtype=np.int64), ev.tolist()
        ev = ev.reshape(-1)
        owner = self._t.owner
        if int(ev.min()) >= 0 and int(ev.max()) < len(owner):
            mine = owner[ev] == w
        else:
            inside = (ev >= 0) & (ev < len(owner))
            mine = np.zeros(len(ev), dtype=bool)
            mine[inside] = owner[ev[inside]] == w
        closed = ev[mine]
        if len(closed) > 1 and not bool(np.all(closed[1:] > closed[:-1])):
            closed = np.unique(closed)  # not strictly increasing: drop repeats
        if len(closed):
            owner[closed] = -1
            self._fast_open -= len(closed)
            slot = self.workers.get(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - len(closed))
        rest = ev[~mine].tolist() if len(closed) != len(ev) else []
        return closed, rest

    def worker_done(self, name: str, events: Iterable[int], results_sent: int | None = None) -> None:
        closed, rest = self._close_fast(name, events)
        self.completed += len(closed)
        slot = self.workers.get(name)
        for event in rest:
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue
            waiting.discard(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - 1)
            if not waiting:
                del self.pending[event]
                if event not in self.failed:
                    self.completed += 1
        if slot is not None and results_sent is not None:
            slot.results_sent = max(slot.results_sent, results_sent)
        self._advance_phase()

    def worker_finished(self, name: str, results_sent: int) -> None:
        slot = self.workers.get(name)
        if slot is not None:
            slot.finished = True
            slot.results_sent = max(slot.results_sent, results_sent)
        self._advance_phase()

    def reducer_progress(self, processed: dict[str, int], finished: bool = False) -> None:
        for worker, count in processed.items():
            self.results_processed[worker] = max(self.results_processed.get(worker, 0), count)
        self.reducer_finished = self.reducer_finished or finished
        self._advance_phase()

    def undeliverable(self, pairs: Iterable[tuple[str, int]]) -> None:
        """An ingester could not reach ``worker`` for ``event``: that part of the event failed
        (the event will never complete there, so it must not be waited for)."""
        for name, event in pairs:
            closed, _ = self._close_fast(name, [event])
            if len(closed):
                self.failed.add(event)
                continue
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue
            waiting.discard(name)
            self.failed.add(event)
            slot = self.workers.get(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - 1)
            if not waiting:
                del self.pending[event]
        self._advance_phase()

    def stop(self) -> int:
        """Stop assigning; unassigned events are cancelled and in-flight ones cancelled by
        the workers. Returns the number of cancelled unassigned events."""
        if not self.stopped:
            self.stopped = True
            self.cancelled += len(self.cmap) - self.next_event
        self._advance_phase()
        return self.cancelled

    def cancel_pending(self, name: str, events: Iterable[int]) -> None:
        """Events a worker dropped after a stop (never arrived)."""
        closed, rest = self._close_fast(name, events)
        self.cancelled += len(closed)
        for event in rest:
            waiting = self.pending.get(event)
            if waiting is not None and name in waiting:
                waiting.discard(name)
                slot = self.workers.get(name)
                if slot is not None:
                    slot.in_flight = max(0, slot.in_flight - 1)
                if not waiting:
                    del self.pending[event]
                    self.cancelled += 1
        self._advance_phase()

    # ---- phases
    def all_events_done(self) -> bool:
        return (self.stopped or self.next_event >= len(self.cmap)) and not self.pending and self._fast_open == 0

    def results_complete(self) -> bool:
        return all(
            self.results_processed.get(w.name, 0) >= w.results_sent for w in self.workers.values() if w.alive
        )

    def _advance_phase(self) -> None:
        if self.phase is Phase.RUNNING and self.all_events_done():
            self.phase = Phase.FINISHING
        if self.phase is Phase.FINISHING and all(w.finished for w in self.alive_workers()):
            self.phase = Phase.REDUCING
        if self.phase is Phase.REDUCING and self.reducer_finished:
            self.phase = Phase.FINISHED

    def ready_for_reducer_finish(self) -> bool:
        return self.phase is Phase.REDUCING and self.results_complete() and not self.reducer_finished

    # ---- reporting
    def progress(self) -> dict[str, object]:
        return {
            "last_assigned": self.next_event,  # events assigned so far (a count, as before)
            "completed_events": self.completed,
            "total_events": len(self.cmap),
            "finished": self.phase is Phase.FINISHED,
            "failed_events": len(self.failed),
            "failed": sorted(self.failed)[:1000],
            "cancelled_events": self.cancelled,
            "in_flight": len(self.pending) + self._fast_open,
            "phase": "waiting for workers" if self.phase is Phase.RUNNING and self.waiting_for_workers else self.phase.value,
            "reason": self.failure_reason,
            "stopped": self.stopped,
            "workers": sorted(w.name for w in self.workers.values() if w.alive),
        }
