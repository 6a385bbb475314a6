"""Scan state: constraint binding, credit-based assignment and progress (pure, no I/O).

The controller owns one :class:`Scan` per trigger map. Events in (workers joining/leaving,
completion batches, reducer counts), instructions out (assignment batches, "finish now").

Credits: a worker advertises ``capacity``; an event is assigned only while every worker it
needs has fewer than ``capacity`` events in flight. Events are assigned strictly in order, so a
stalled worker stalls assignment (backpressure) rather than reordering the stream.
A constraint is bound to a worker the first time it is assigned and stays bound for the map; if
that worker dies, later events of the constraint are bound anew.

Outcomes (every event ends completed or failed, ``completed + failed + cancelled == total``):

* An event *settles* once no worker still owes it and no result it produced is still on its
  way to the reducer. It settles failed when a part of it failed (undeliverable, or its worker
  died holding its frames) and the reducer holds no result of it; otherwise completed.
* Completion is what the reducer received: workers say which events sent a result, the reducer
  says which (worker, event) results it processed; the two are matched here. A result the
  reducer confirms for an event already settled failed moves it to completed.
* A worker that dies: its events are re-routed (:meth:`reroute_worker`): the ingesters move
  routes they have not used yet to live workers and report the rest undeliverable, so only
  events whose frames the dead worker already had fail.
* A worker missing its heartbeat is only *missing* (keeps its place, constraints and credits)
  until the controller's grace time ends.
* The reducer restarting (a new ``instance``): the results held by the old process are lost,
  so the events that completed through it fail; results still on their way are waited for a
  bounded time (:meth:`expire_results`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable, Mapping, Sequence

import numpy as np

from dranspose.core.ledger import Ledger, WorkerSlot
from dranspose.core.maptables import MapTables
from dranspose.core.runs import Assignment, FastRun, Reroute, Run, spread
from dranspose.core.triggermap import CompiledMap, ConstraintKey, Slot


class Phase(enum.Enum):
    RUNNING = "running"  # events being assigned and processed
    FINISHING = "finishing"  # every event done; workers run finish()
    REDUCING = "reducing"  # workers finished; waiting for the reducer's results and finish()
    FINISHED = "finished"


@dataclass
class Scan:
    cmap: CompiledMap
    workers: dict[str, WorkerSlot] = field(default_factory=dict)
    next_event: int = 0
    pending: dict[int, set[str]] = field(default_factory=dict)  # general-path event -> workers not done yet
    targets: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # unsettled events
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

    reducer_instance: str | None = None
    reducer_restarts: int = 0
    retired_reducers: set[str] = field(default_factory=set)  # instances that were replaced
    broken: set[int] = field(default_factory=set)  # unsettled events with a failed part
    awaiting: dict[int, int] = field(default_factory=dict)  # event -> results not confirmed yet
    awaiting_pairs: set[tuple[str, int]] = field(default_factory=set)
    early_pairs: set[tuple[str, int]] = field(default_factory=set)  # confirmed before reported
    tracks_results: bool = False  # the reducer reports which results it received
    reasons: list[str] = field(default_factory=list)  # why events failed, for the status

    def __post_init__(self) -> None:
        self._t = MapTables(self.cmap)
        self._names: list[str] = []  # worker index -> name (indices are never reused)
        self._index: dict[str, int] = {}
        self._ledger = Ledger()  # credits and in-flight counts by worker index
        self._fast_open = 0  # open events of the fast path (owner >= 0)
        self._fast_wait = 0  # fast events whose result the reducer has not confirmed (wait >= 0)
        self._fast_early = 0  # open fast events with an early confirmation (early)
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
        index = self._idx(name)
        self._version += 1
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            self.workers[name] = WorkerSlot(name, frozenset(tags), max(1, capacity), self._ledger, index,
                                            service_uuid=service_uuid)
        else:
            slot.tags, slot.capacity, slot.missing = frozenset(tags), max(1, capacity), False

    def set_capacity(self, name: str, capacity: int) -> None:
        """New credits for a live worker (flow control); in-flight events stay."""
        slot = self.workers.get(name)
        if slot is not None and slot.alive:
            slot.capacity = max(1, capacity)

    def mark_missing(self, name: str) -> None:
        """Heartbeat lost: nothing is failed or re-routed while the worker may come back."""
        slot = self.workers.get(name)
        if slot is not None and slot.alive:
            slot.missing = True

    def mark_back(self, name: str) -> bool:
        """The same process is back: it keeps its place, constraints and credits."""
        slot = self.workers.get(name)
        if slot is not None and slot.alive and slot.missing:
            slot.missing = False
            return True
        return False

    def _kill(self, name: str) -> WorkerSlot | None:
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            return None
        w = self._idx(name)
        t = self._t
        self._promote_results()
        self._promote(np.flatnonzero(t.owner == w))  # its fast-path events are handled as the others
        slot.alive, slot.missing, slot.in_flight = False, False, 0
        t.bound[t.bound == w] = -1
        self._version += 1
        return slot

    def _promote(self, events: np.ndarray) -> None:
        """Move open fast-path events into the general bookkeeping (``pending``/``targets``),
        where re-routing, result reconciliation and failure handling work on them."""
        t = self._t
        for e in np.asarray(events, dtype=np.int64).reshape(-1).tolist():
            w = int(t.owner[e])
            if w < 0:
                continue
            name = self._names[w]
            t.owner[e] = -1
            self._fast_open -= 1
            self.pending[e] = {name}
            self.targets[e] = {s: (name,) for s in t.stream_sets[int(t.sset[e])]}
            if t.early[e]:
                t.early[e] = False
                self._fast_early -= 1
                self.early_pairs.add((name, e))

    def _promote_results(self) -> None:
        """Move the fast path's result state into the general bookkeeping (``awaiting``,
        ``early_pairs``): the paths for faults (a worker or the reducer lost, results given
        up, a scan abandoned) then see every event the same way."""
        t = self._t
        if self._fast_wait:
            for e in np.flatnonzero(t.wait >= 0).tolist():
                name = self._names[int(t.wait[e])]
                t.wait[e] = -1
                self.pending[e] = set()
                self.targets[e] = {s: (name,) for s in t.stream_sets[int(t.sset[e])]}
                self.awaiting[e] = self.awaiting.get(e, 0) + 1
                self.awaiting_pairs.add((name, e))
            self._fast_wait = 0
        if self._fast_early:
            self._promote(np.flatnonzero(t.early))

    def reduced_count(self) -> int:
        """Events the current reducer holds a result of (as it confirmed them)."""
        return int(np.count_nonzero(self._t.reduced))

    def awaiting_count(self) -> int:
        """Results reported by workers and not yet confirmed by the reducer."""
        return len(self.awaiting_pairs) + self._fast_wait

    def _is_fast_open(self, event: int) -> bool:
        owner = self._t.owner
        return 0 <= event < len(owner) and bool(owner[event] >= 0)

    def remove_worker(self, name: str) -> list[int]:
        """A worker died and nothing can be re-routed: its unfinished events fail."""
        if self._kill(name) is None:
            return []
        lost = []
        for event, waiting in list(self.pending.items()):
            if name in waiting:
                waiting.discard(name)
                self.broken.add(event)
                lost.append(event)
                self._settle(event)
        self._advance_phase()
        return sorted(lost)

    def reroute_worker(self, name: str) -> tuple[list[Reroute], list[int]]:
        """A worker died: bind its unfinished events' parts anew to live workers (credits are
        not checked: these events were admitted already). Returns the re-routes to announce and
        the events nobody alive can take (failed)."""
        if self._kill(name) is None:
            return [], []
        reroutes: list[Reroute] = []
        failed: list[int] = []
        for event, waiting in sorted(self.pending.items()):
            if name not in waiting:
                continue
            waiting.discard(name)
            old = self.targets.get(event, {})
            new_targets: dict[str, tuple[str, ...]] = {}
            added: list[str] = []
            unserved = False
            for stream, names in old.items():
                if name not in names:
                    continue
                keep = [n for n in names if n != name]
                for slot in self.cmap.events[event].get(stream, ()):
                    if slot.constraint is None:
                        continue  # broadcast: the live ones already have it
                    bound = self._bound_name(slot.constraint)
                    if bound is None or not self.workers[bound].alive:
                        candidates = self._eligible(slot)
                        if not candidates:
                            unserved = True
                            continue
                        bound = max(candidates, key=lambda w: (w.free(), -w.in_flight)).name
                        self._t.bound[self._t.code_of[slot.constraint]] = self._idx(bound)
                    if bound not in keep:
                        keep.append(bound)
                        if bound not in waiting and bound not in added:
                            added.append(bound)
                new_targets[stream] = tuple(keep)
            for n in added:
                waiting.add(n)
                self.workers[n].in_flight += 1
            self.targets[event] = {**old, **new_targets}
            if added:
                reroutes.append((event, new_targets, tuple(added)))
            if unserved:
                self.broken.add(event)
                failed.append(event)
            self._settle(event)
        self._advance_phase()
        return reroutes, failed

    def alive_workers(self) -> list[WorkerSlot]:
        return [w for w in self.workers.values() if w.alive]

    def open_events(self) -> dict[int, set[str]]:
        """Every assigned event not completed yet -> the workers it waits for."""
        out = {e: set(ws) for e, ws in self.pending.items() if ws}
        owner = self._t.owner
        for e in np.flatnonzero(owner >= 0).tolist():
            out[e] = {self._names[owner[e]]}
        return out

    def open_count(self) -> int:
        """(event, worker) parts assigned and not done yet, over both paths."""
        return sum(len(w) for w in self.pending.values()) + self._fast_open

    def owes(self, name: str) -> bool:
        """Whether worker ``name`` holds an unfinished event."""
        w = self._index.get(name)
        if w is not None and bool((self._t.owner == w).any()):
            return True
        return any(name in waiting for waiting in self.pending.values())

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
            names: dict[str, None] = {}  # ordered, and a broadcast to many workers stays linear
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
                    names[name] = None
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
            self.targets[self.next_event] = targets  # a worker that dies mid-event is re-routed from these
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
        nw = len(self._names)
        slots, live, tag_ok = self._membership()
        free = self._ledger.free(live)
        # every event assigned takes one credit: look no further than the credits reach (at
        # least one event, which then says who is blocked)
        stop = min(len(self.cmap), start + min(limit, self.window, max(1, int(free.sum()))))
        codes = t.simple[start:stop]
        if not live.any() or len(codes) == 0 or codes[0] < 0:
            return None, False
        ok = (codes >= 0) & tag_ok[t.tagset[start:stop]]
        k = len(codes) if ok.all() else int(np.argmin(ok))
        if k == 0:
            return None, False
        codes = codes[:k]
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
            alloc = spread(avail, len(ucodes))  # workers with the most free credits first
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
        self._ledger.in_flight[:nw] += np.bincount(tgt, minlength=nw)
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
        closed = self._t.distinct(ev[mine])
        if len(closed):
            owner[closed] = -1
            self._fast_open -= len(closed)
            slot = self.workers.get(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - len(closed))
        rest = ev[~mine].tolist() if len(closed) != len(ev) else []
        return closed, rest

    # ---- resuming (a restarted controller replays the assignment stream)
    def restore_assignment(self, event: int, targets: dict[str, tuple[str, ...]]) -> None:
        """Re-apply an assignment made by a previous controller (workers must be added first;
        unknown names are added as dead). Completion reports are replayed afterwards."""
        if event < self.next_event or event >= len(self.cmap):
            return
        self.next_event = event + 1
        names = {n for ns in targets.values() for n in ns}
        for name in names:
            if name not in self.workers:
                self.workers[name] = WorkerSlot(name, frozenset(), 1, self._ledger, self._idx(name), alive=False)
                self._version += 1
            self.workers[name].in_flight += 1
        for stream, ns in targets.items():
            slots = self.cmap.events[event].get(stream, ())
            constrained = [sl for sl in slots if sl.constraint is not None]
            if len(constrained) == 1 and len(slots) == 1 and ns:
                self._t.bound[self._t.code_of[constrained[0].constraint]] = self._idx(ns[0])  # type: ignore[index]
        if names:
            self.pending[event] = set(names)
            self.targets[event] = dict(targets)
        elif any(self.cmap.events[event][s] for s in targets):
            self.failed.add(event)
        else:
            self.completed += 1

    def restore_reroute(self, dead: str, event: int, targets: dict[str, tuple[str, ...]], added: Iterable[str]) -> None:
        """Re-apply a re-route made by a previous controller."""
        self._promote_results()
        slot = self.workers.get(dead)
        if slot is not None:
            slot.alive, slot.in_flight = False, 0
            self._version += 1
        waiting = self.pending.get(event)
        if waiting is None:
            return
        waiting.discard(dead)
        for name in added:
            if name in self.workers and name not in waiting:
                waiting.add(name)
                self.workers[name].in_flight += 1
        self.targets[event] = {**self.targets.get(event, {}), **targets}

    # ---- settling
    def _settle(self, event: int) -> None:
        """Decide the event's outcome once nobody owes it anything."""
        if event in self.pending and self.pending[event]:
            return
        if self.awaiting.get(event, 0) > 0:
            return
        self.pending.pop(event, None)
        self.awaiting.pop(event, None)
        self.targets.pop(event, None)
        if event in self.broken and not self._t.reduced[event]:
            self.failed.add(event)
        else:
            self.completed += 1
        self.broken.discard(event)

    def _is_unsettled(self, event: int) -> bool:
        wait = self._t.wait
        return (
            event in self.pending or event in self.awaiting or self._is_fast_open(event)
            or (0 <= event < len(wait) and bool(wait[event] >= 0))
        )

    def _promote_owned(self, name: str, events: Iterable[int]) -> None:
        """Promote those of ``events`` that are open fast-path events of ``name``."""
        w = self._index.get(name)
        ev = np.asarray(list(events), dtype=np.int64).reshape(-1)
        if w is None or ev.size == 0:
            return
        owner = self._t.owner
        ev = ev[(ev >= 0) & (ev < len(owner))]
        self._promote(ev[owner[ev] == w])

    # ---- completion
    def worker_done(
        self, name: str, events: Iterable[int], results_sent: int | None = None, results: Iterable[int] | None = None
    ) -> None:
        """``events`` done by ``name``; ``results``: those of them that sent a result."""
        self.workers_done([(name, list(events), results_sent, list(results or ()))])

    def _worker_done_general(self, name: str, events: list[int], results_sent: int | None, results: list[int]) -> None:
        """What :meth:`workers_done` leaves of one report: events and results that are not open
        fast events of the reporting worker (those were closed in its array pass), i.e.
        general-path events, repeats and numbers of events this worker does not hold."""
        slot = self.workers.get(name)
        for event in results:
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue  # settled already (failed): the reducer's confirmation reconciles it
            pair = (name, event)
            if pair in self.awaiting_pairs:
                continue  # reported again (a report resent after a Redis restart)
            if pair in self.early_pairs:
                self.early_pairs.discard(pair)
            else:
                self.awaiting_pairs.add(pair)
                self.awaiting[event] = self.awaiting.get(event, 0) + 1
        for event in events:
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue
            waiting.discard(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - 1)
            self._settle(event)
        if slot is not None and results_sent is not None:
            slot.results_sent = max(slot.results_sent, results_sent)
        self._advance_phase()

    def workers_done(self, reports: Sequence[tuple[str, Sequence[int], int | None, Sequence[int] | None]]) -> None:
        """Several completion reports ``(worker, events, results_sent, results)`` read together,
        with the outcome of :meth:`worker_done` applied to each in turn: the fast events, with
        or without a result, are closed for all reports in one pass over arrays; whatever else
        a report holds takes the per-event bookkeeping."""
        t, n = self._t, len(self._t.owner)
        widx = np.array([self._index.get(name, -1) for name, _e, _s, _r in reports], dtype=np.int64)
        rlists = [r if r is not None else () for _n, _e, _s, r in reports]
        elists = [e if isinstance(e, (list, tuple, np.ndarray)) else list(e) for _n, e, _s, _r in reports]
        R, RW, RI = _flatten(rlists, widx, n)
        if all(r is e for r, e in zip(rlists, elists)):  # every event sent a result ("res": "all")
            E, EW, EI = R, RW, RI
        else:
            E, EW, EI = _flatten(elists, widx, n)
        nw = len(self._names)
        held = self._ledger.in_flight[:nw]
        mine = (R >= 0) & (RW >= 0)
        mine[mine] = t.owner[R[mine]] == RW[mine]
        taken = t.distinct(R[mine])
        if len(taken):
            t.mark[taken] = True  # scratch: the events closed here
            owners = t.owner[taken].astype(np.int64)
            t.owner[taken] = -1
            self._fast_open -= len(taken)
            np.maximum(held - np.bincount(owners, minlength=nw), 0, out=held)
            early = t.early[taken]
            n_early = int(early.sum())
            if n_early:  # confirmed by the reducer already: complete now
                t.early[taken[early]] = False
                self._fast_early -= n_early
                self.completed += n_early
            waiting = ~early
            t.wait[taken[waiting]] = owners[waiting]
            self._fast_wait += len(taken) - n_early
        closed = E < 0  # numbers of no event of this scan: nothing to do
        closed[~closed] = t.mark[E[~closed]]
        if len(taken):
            t.mark[taken] = False
        plain = ~closed & (EW >= 0)  # open fast events of the reporting worker, without a result:
        plain[plain] = t.owner[E[plain]] == EW[plain]  # nothing to wait for, complete now
        if plain.any():
            ended = t.distinct(E[plain])
            np.maximum(held - np.bincount(t.owner[ended].astype(np.int64), minlength=nw), 0, out=held)
            t.owner[ended] = -1
            self._fast_open -= len(ended)
            self.completed += len(ended)
            closed |= plain
        handled = mine | (R < 0)
        left_e = np.bincount(EI[~closed], minlength=len(reports))
        left_r = np.bincount(RI[~handled], minlength=len(reports))
        general = np.flatnonzero(left_e | left_r).tolist()  # reports with more than fast events
        if general:  # their leftovers, in report order: report i's are one slice of each
            rest_e, rest_r = E[~closed], R[~handled]
            end_e, end_r = np.cumsum(left_e).tolist(), np.cumsum(left_r).tolist()
            n_e, n_r = left_e.tolist(), left_r.tolist()
            for i in general:
                name, _events, sent, _results = reports[i]
                self._worker_done_general(name, rest_e[end_e[i] - n_e[i] : end_e[i]].tolist(), sent,
                                          rest_r[end_r[i] - n_r[i] : end_r[i]].tolist())
        workers = self.workers
        for name, _events, sent, _results in reports:  # the others' result counts (the general ones' again: a no-op)
            slot = workers.get(name)
            if slot is not None and sent is not None and sent > slot.results_sent:
                slot.results_sent = sent
        self._advance_phase()

    def _confirm_all(self, received: Mapping[str, Sequence[int]] | Iterable[tuple[str, int]]) -> None:
        """The reducer's confirmations (``{worker: [event, ...]}`` or ``(worker, event)``
        pairs): fast events in bulk, the others one by one."""
        by_worker = received if isinstance(received, Mapping) else pairs_by_worker(received)
        names = [w for w, evs in by_worker.items() if len(evs)]
        if not names:
            return
        t = self._t
        widx = np.array([self._index.get(w, -1) for w in names], dtype=np.int64)
        es, ws, report = _flatten([by_worker[w] for w in names], widx, len(t.owner))
        inside = es >= 0  # other numbers name no event of this scan: nothing to confirm
        ok = inside & (ws >= 0)
        at = np.where(ok, es, 0)
        hit = ok & (t.wait[at] == ws)  # reported by its worker: completes now
        done = t.distinct(es[hit])
        if len(done):
            t.wait[done] = -1
            self._fast_wait -= len(done)
            self.completed += len(done)
            t.reduced[done] = True
        early = ok & ~hit & (t.owner[at] == ws)  # its worker has not reported it yet
        first = t.distinct(es[early])
        if len(first):
            new = first[~t.early[first]]
            t.early[new] = True
            self._fast_early += len(new)
            t.reduced[first] = True
        for i in np.flatnonzero(inside & ~(hit | early)).tolist():
            self._confirm((names[int(report[i])], int(es[i])))

    def worker_finished(self, name: str, results_sent: int) -> None:
        slot = self.workers.get(name)
        if slot is not None:
            slot.finished = True
            slot.results_sent = max(slot.results_sent, results_sent)
        self._advance_phase()

    def reducer_progress(
        self,
        processed: dict[str, int],
        finished: bool = False,
        instance: str | None = None,
        received: Mapping[str, Sequence[int]] | Iterable[tuple[str, int]] | None = None,
    ) -> bool:
        """A reducer report. Returns True when it comes from a new reducer process (restart)."""
        restarted = False
        if instance is not None:
            if instance in self.retired_reducers:
                return False  # a late report of a process that is gone: what it held is lost
            if self.reducer_instance is not None and instance != self.reducer_instance:
                self.retired_reducers.add(self.reducer_instance)
                if self.phase is not Phase.FINISHED:  # a finished scan's results were delivered
                    self._reducer_restarted()
                    restarted = True
            self.reducer_instance = instance
        for worker, count in processed.items():
            self.results_processed[worker] = max(self.results_processed.get(worker, 0), count)
        if received is not None:
            self.tracks_results = True
            self._confirm_all(received)
        self.reducer_finished = self.reducer_finished or finished
        self._advance_phase()
        return restarted

    def _confirm(self, pair: tuple[str, int]) -> None:
        name, event = pair
        if pair in self.awaiting_pairs:
            self.awaiting_pairs.discard(pair)
            self.awaiting[event] -= 1
            self._t.reduced[event] = True
            self._settle(event)
        elif event in self.failed and not self._t.reduced[event]:
            self.failed.discard(event)  # the reducer holds its result after all
            self.completed += 1
            self._t.reduced[event] = True
        elif self._is_unsettled(event):
            self.early_pairs.add(pair)
            self._t.reduced[event] = True
        elif 0 <= event < self.next_event:
            self._t.reduced[event] = True  # completed already (a result not reported by its worker)

    def _reducer_restarted(self) -> None:
        """The results the old reducer process held are gone: their events fail."""
        self._promote_results()
        self.reducer_restarts += 1
        lost = 0
        held = np.flatnonzero(self._t.reduced).tolist()
        for event in held:
            if self._is_unsettled(event):
                self.broken.add(event)
            elif event not in self.failed:
                self.completed -= 1
                self.failed.add(event)
                lost += 1
        if held:
            self.reasons.append(f"reducer restarted: results of {len(held)} events lost with the old process")
        self._t.reduced[:] = False
        self.early_pairs = set()
        self.results_processed = {}
        self.reducer_finished = False
        if self.phase is Phase.FINISHED:
            self.phase = Phase.REDUCING

    def expire_results(self) -> list[int]:
        """Stop waiting for unconfirmed results (the reducer lost them): their events settle,
        failed unless the reducer holds another of their results. Returns those events."""
        self._promote_results()
        events = sorted({e for _w, e in self.awaiting_pairs})
        self.awaiting_pairs = set()
        for event in events:
            self.awaiting[event] = 0
            self.broken.add(event)
            self._settle(event)
        if events:
            self.reasons.append(f"results of {len(events)} events never reached the reducer")
        self._advance_phase()
        return events

    def fail_stalled(self, reason: str) -> list[int]:
        """Events that cannot be formed (their frames never come): fail every unsettled event
        still owed by a worker. Returns them."""
        self._promote_results()
        self._promote(np.flatnonzero(self._t.owner >= 0))
        events = sorted(e for e, waiting in self.pending.items() if waiting)  # not those only awaiting results
        for event in events:
            for name in self.pending[event]:
                slot = self.workers.get(name)
                if slot is not None:
                    slot.in_flight = max(0, slot.in_flight - 1)
            self.pending[event] = set()
            self.broken.add(event)
            self._settle(event)
        if events:
            self.reasons.append(f"{len(events)} events failed: {reason}")
        self._advance_phase()
        return events

    def give_up(self, reason: str, unassigned_only: bool = False) -> list[int]:
        """Events cannot be formed any more: every unassigned event fails and, unless
        ``unassigned_only`` (no usable worker came in time), every unsettled event owed by a
        worker (their frames do not come); workers and reducer still finish, and the scan
        ends with ``reason``. Returns the events failed."""
        events = [] if unassigned_only else self.fail_stalled(reason)
        if not self.stopped and self.next_event < len(self.cmap):
            rest = list(range(self.next_event, len(self.cmap)))
            self.failed.update(rest)
            self.next_event = len(self.cmap)
            self.reasons.append(f"{len(rest)} unassigned events failed: {reason}")
            events += rest
        self.waiting_for_workers = False
        self.failure_reason = reason
        self._advance_phase()
        return events

    def abandon(self, reason: str) -> None:
        """End the scan now: everything unsettled or unassigned fails, with ``reason``."""
        self._promote_results()
        self._promote(np.flatnonzero(self._t.owner >= 0))
        for event in set(self.pending) | set(self.awaiting):
            self.pending[event] = set()
            self.awaiting[event] = 0
            self.broken.add(event)
            self._settle(event)
        self.awaiting_pairs = set()
        rest = range(self.next_event, len(self.cmap)) if not self.stopped else range(0)
        self.failed.update(rest)
        self.next_event = len(self.cmap) if not self.stopped else self.next_event
        self.reasons.append(f"scan abandoned: {reason}")
        self.phase = Phase.FINISHED

    def undeliverable(self, pairs: Iterable[tuple[str, int]]) -> None:
        """An ingester could not reach ``worker`` for ``event``: that part of the event failed
        (the event will never complete there, so it must not be waited for)."""
        for name, event in pairs:
            self._promote_owned(name, [event])
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue
            waiting.discard(name)
            self.broken.add(event)
            slot = self.workers.get(name)
            if slot is not None:
                slot.in_flight = max(0, slot.in_flight - 1)
            self._settle(event)
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
                if not waiting and not self.awaiting.get(event):
                    del self.pending[event]
                    self.targets.pop(event, None)
                    self.broken.discard(event)
                    self.cancelled += 1
        self._advance_phase()

    # ---- phases
    def all_events_done(self) -> bool:
        return (self.stopped or self.next_event >= len(self.cmap)) and not any(self.pending.values()) and self._fast_open == 0

    def results_complete(self) -> bool:
        if self.awaiting_pairs or self._fast_wait:
            return False
        if self.tracks_results:
            return True
        return all(
            self.results_processed.get(w.name, 0) >= w.results_sent for w in self.workers.values() if w.alive
        )

    def _advance_phase(self) -> None:
        if self.phase is Phase.RUNNING and self.all_events_done():
            self.phase = Phase.FINISHING
        if self.phase is Phase.FINISHING and all(w.finished for w in self.alive_workers()):
            self.phase = Phase.REDUCING
        if self.phase is Phase.REDUCING and self.reducer_finished and self.results_complete():
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
            "in_flight": sum(1 for w in self.pending.values() if w) + self._fast_open,
            "awaiting_results": self.awaiting_count(),
            "phase": "waiting for workers" if self.phase is Phase.RUNNING and self.waiting_for_workers else self.phase.value,
            "reason": self.failure_reason,
            "stopped": self.stopped,
            "workers": sorted(w.name for w in self.workers.values() if w.alive),
            "missing_workers": sorted(w.name for w in self.workers.values() if w.alive and w.missing),
            "reducer_restarts": self.reducer_restarts,
            "failure_reasons": self.reasons[-20:],
        }


def pairs_by_worker(pairs: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """``(worker, event)`` pairs as ``{worker: [event, ...]}`` (order kept)."""
    out: dict[str, list[int]] = {}
    for worker, event in pairs:
        out.setdefault(worker, []).append(event)
    return out


def _flatten(lists: Sequence[Sequence[int]], workers: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event lists of several reports as one array (numbers outside ``0..n-1`` as -1), with
    each entry's worker index and report index."""
    lens = [len(x) for x in lists]
    total = sum(lens)
    if not total:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    try:
        if all(type(x) is list for x in lists):  # as decoded from reports: one C pass over all
            flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=total)
        else:
            flat = np.concatenate([np.asarray(x, dtype=np.int64).reshape(-1) for x in lists if len(x)])
    except (OverflowError, ValueError, TypeError):  # a number past int64 is past the scan too
        flat = np.fromiter((e if isinstance(e, int) and 0 <= e < n else -1 for x in lists for e in x), dtype=np.int64, count=total)
    flat[(flat < 0) | (flat >= n)] = -1
    report = np.repeat(np.arange(len(lists), dtype=np.int64), lens)
    return flat, workers[report], report
