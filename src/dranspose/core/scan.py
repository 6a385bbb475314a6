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
from typing import Iterable

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


@dataclass
class Scan:
    cmap: CompiledMap
    workers: dict[str, WorkerSlot] = field(default_factory=dict)
    next_event: int = 0
    bindings: dict[ConstraintKey, str] = field(default_factory=dict)
    pending: dict[int, set[str]] = field(default_factory=dict)  # event -> workers not done yet
    completed: int = 0
    failed: set[int] = field(default_factory=set)
    cancelled: int = 0
    phase: Phase = Phase.RUNNING
    stopped: bool = False
    results_processed: dict[str, int] = field(default_factory=dict)  # per worker, from reducer
    reducer_finished: bool = False
    waiting_for_workers: bool = False  # the next event needs a worker no live one can be
    failure_reason: str | None = None  # why the scan ended as failed (see give_up)

    # ---- membership
    def add_worker(self, name: str, tags: Iterable[str], capacity: int, service_uuid: str | None = None) -> None:
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            self.workers[name] = WorkerSlot(name, frozenset(tags), max(1, capacity), service_uuid=service_uuid)
        else:
            slot.tags, slot.capacity = frozenset(tags), max(1, capacity)

    def remove_worker(self, name: str) -> list[int]:
        """A worker died: its unfinished events fail; returns their numbers."""
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            return []
        slot.alive = False
        slot.in_flight = 0
        lost = []
        for event, waiting in list(self.pending.items()):
            if name in waiting:
                waiting.discard(name)
                self.failed.add(event)
                lost.append(event)
                if not waiting:
                    del self.pending[event]
        self.bindings = {k: w for k, w in self.bindings.items() if w != name}
        self._advance_phase()
        return sorted(lost)

    def alive_workers(self) -> list[WorkerSlot]:
        return [w for w in self.workers.values() if w.alive]

    # ---- assignment
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
                    bound = self.bindings.get(slot.constraint) or new_bindings.get(slot.constraint)
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
        if any(self.workers[name].free() < 1 for name in planned):
            return None
        self.bindings.update(new_bindings)
        return targets

    def assign(self, limit: int = 1 << 30) -> list[Assignment]:
        """Assign as many upcoming events as credits allow (at most ``limit``)."""
        out: list[Assignment] = []
        self.waiting_for_workers = False
        if self.stopped:
            return out
        while self.next_event < len(self.cmap) and len(out) < limit:
            targets = self._resolve(self.next_event)
            if targets is None:
                break
            workers = {name for names in targets.values() for name in names}
            for name in workers:
                self.workers[name].in_flight += 1
            if workers:
                self.pending[self.next_event] = workers
            elif any(self.cmap.events[self.next_event][s] for s in targets):
                self.failed.add(self.next_event)  # needed a worker, none alive can serve it
            else:
                self.completed += 1  # only discards / nothing to process
            out.append((self.next_event, targets))
            self.next_event += 1
        self._advance_phase()
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
    def worker_done(self, name: str, events: Iterable[int], results_sent: int | None = None) -> None:
        slot = self.workers.get(name)
        for event in events:
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
        for event in events:
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
        return (self.stopped or self.next_event >= len(self.cmap)) and not self.pending

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
            "in_flight": len(self.pending),
            "phase": "waiting for workers" if self.phase is Phase.RUNNING and self.waiting_for_workers else self.phase.value,
            "reason": self.failure_reason,
            "stopped": self.stopped,
            "workers": sorted(w.name for w in self.workers.values() if w.alive),
        }
