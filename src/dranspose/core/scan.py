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
    missing: bool = False  # heartbeat lost, within the grace time: keeps its place

    def free(self) -> int:
        return self.capacity - self.in_flight


# One assigned event: (event number, {stream: worker names}); an empty tuple means discard.
Assignment = tuple[int, dict[str, tuple[str, ...]]]
# One re-routed event: (event, {stream: new worker names} for the streams the dead worker had,
# workers added by the re-route).
Reroute = tuple[int, dict[str, tuple[str, ...]], tuple[str, ...]]


@dataclass
class Scan:
    cmap: CompiledMap
    workers: dict[str, WorkerSlot] = field(default_factory=dict)
    next_event: int = 0
    bindings: dict[ConstraintKey, str] = field(default_factory=dict)
    pending: dict[int, set[str]] = field(default_factory=dict)  # event -> workers not done yet
    targets: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # unsettled events
    completed: int = 0
    failed: set[int] = field(default_factory=set)
    cancelled: int = 0
    phase: Phase = Phase.RUNNING
    stopped: bool = False
    results_processed: dict[str, int] = field(default_factory=dict)  # per worker, from reducer
    reducer_finished: bool = False
    reducer_instance: str | None = None
    reducer_restarts: int = 0
    retired_reducers: set[str] = field(default_factory=set)  # instances that were replaced
    broken: set[int] = field(default_factory=set)  # unsettled events with a failed part
    awaiting: dict[int, int] = field(default_factory=dict)  # event -> results not confirmed yet
    awaiting_pairs: set[tuple[str, int]] = field(default_factory=set)
    early_pairs: set[tuple[str, int]] = field(default_factory=set)  # confirmed before reported
    reduced: set[int] = field(default_factory=set)  # events the current reducer holds a result of
    tracks_results: bool = False  # the reducer reports which results it received
    reasons: list[str] = field(default_factory=list)  # why events failed, for the status

    # ---- membership
    def add_worker(self, name: str, tags: Iterable[str], capacity: int, service_uuid: str | None = None) -> None:
        slot = self.workers.get(name)
        if slot is None or not slot.alive:
            self.workers[name] = WorkerSlot(name, frozenset(tags), max(1, capacity), service_uuid=service_uuid)
        else:
            slot.tags, slot.capacity, slot.missing = frozenset(tags), max(1, capacity), False

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
        slot.alive, slot.missing, slot.in_flight = False, False, 0
        self.bindings = {k: w for k, w in self.bindings.items() if w != name}
        return slot

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
                    bound = self.bindings.get(slot.constraint)
                    if bound is None or not self.workers[bound].alive:
                        candidates = self._eligible(slot)
                        if not candidates:
                            unserved = True
                            continue
                        bound = max(candidates, key=lambda w: (w.free(), -w.in_flight)).name
                        self.bindings[slot.constraint] = bound
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

    # ---- assignment
    def _eligible(self, slot: Slot) -> list[WorkerSlot]:
        return [w for w in self.workers.values() if w.alive and slot.tags <= w.tags]

    def _resolve(self, event: int) -> dict[str, tuple[str, ...]] | None:
        """Targets of ``event`` per stream, or None when a needed worker has no credit.
        Binds new constraints. A slot nobody alive can serve resolves to no worker."""
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
                self.targets[self.next_event] = targets
            elif any(self.cmap.events[self.next_event][s] for s in targets):
                self.failed.add(self.next_event)  # needed a worker, none alive can serve it
                self.reasons.append(f"event {self.next_event}: no live worker can serve it")
            else:
                self.completed += 1  # only discards / nothing to process
            out.append((self.next_event, targets))
            self.next_event += 1
        self._advance_phase()
        return out

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
                self.workers[name] = WorkerSlot(name, frozenset(), 1, alive=False)
            self.workers[name].in_flight += 1
        for stream, ns in targets.items():
            slots = self.cmap.events[event].get(stream, ())
            constrained = [sl for sl in slots if sl.constraint is not None]
            if len(constrained) == 1 and len(slots) == 1 and ns:
                self.bindings[constrained[0].constraint] = ns[0]  # type: ignore[index]
        if names:
            self.pending[event] = set(names)
            self.targets[event] = dict(targets)
        elif any(self.cmap.events[event][s] for s in targets):
            self.failed.add(event)
        else:
            self.completed += 1

    def restore_reroute(self, dead: str, event: int, targets: dict[str, tuple[str, ...]], added: Iterable[str]) -> None:
        """Re-apply a re-route made by a previous controller."""
        slot = self.workers.get(dead)
        if slot is not None:
            slot.alive, slot.in_flight = False, 0
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
        if event in self.broken and event not in self.reduced:
            self.failed.add(event)
        else:
            self.completed += 1
        self.broken.discard(event)

    def _is_unsettled(self, event: int) -> bool:
        return event in self.pending or event in self.awaiting

    # ---- completion
    def worker_done(
        self, name: str, events: Iterable[int], results_sent: int | None = None, results: Iterable[int] | None = None
    ) -> None:
        """``events`` done by ``name``; ``results``: those of them that sent a result."""
        slot = self.workers.get(name)
        for event in results or ():
            waiting = self.pending.get(event)
            if waiting is None or name not in waiting:
                continue  # settled already (failed): the reducer's confirmation reconciles it
            pair = (name, event)
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
        received: Iterable[tuple[str, int]] | None = None,
    ) -> bool:
        """A reducer report. Returns True when it comes from a new reducer process (restart)."""
        restarted = False
        if instance is not None:
            if instance in self.retired_reducers:
                return False  # a late report of a process that is gone: what it held is lost
            if self.reducer_instance is not None and instance != self.reducer_instance:
                self.retired_reducers.add(self.reducer_instance)
                self._reducer_restarted()
                restarted = True
            self.reducer_instance = instance
        for worker, count in processed.items():
            self.results_processed[worker] = max(self.results_processed.get(worker, 0), count)
        if received is not None:
            self.tracks_results = True
            for pair in received:
                self._confirm(pair)
        self.reducer_finished = self.reducer_finished or finished
        self._advance_phase()
        return restarted

    def _confirm(self, pair: tuple[str, int]) -> None:
        name, event = pair
        if pair in self.awaiting_pairs:
            self.awaiting_pairs.discard(pair)
            self.awaiting[event] -= 1
            self.reduced.add(event)
            self._settle(event)
        elif event in self.failed and event not in self.reduced:
            self.failed.discard(event)  # the reducer holds its result after all
            self.completed += 1
            self.reduced.add(event)
        elif self._is_unsettled(event):
            self.early_pairs.add(pair)
            self.reduced.add(event)
        elif 0 <= event < self.next_event:
            self.reduced.add(event)  # completed already (a result not reported by its worker)

    def _reducer_restarted(self) -> None:
        """The results the old reducer process held are gone: their events fail."""
        self.reducer_restarts += 1
        lost = 0
        for event in self.reduced:
            if self._is_unsettled(event):
                self.broken.add(event)
            elif event not in self.failed:
                self.completed -= 1
                self.failed.add(event)
                lost += 1
        if self.reduced:
            self.reasons.append(f"reducer restarted: results of {len(self.reduced)} events lost with the old process")
        self.reduced = set()
        self.early_pairs = set()
        self.results_processed = {}
        self.reducer_finished = False
        if self.phase is Phase.FINISHED:
            self.phase = Phase.REDUCING

    def expire_results(self) -> list[int]:
        """Stop waiting for unconfirmed results (the reducer lost them): their events settle,
        failed unless the reducer holds another of their results. Returns those events."""
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

    def give_up(self, reason: str) -> list[int]:
        """Events cannot be formed any more (their frames do not come): every unsettled event
        owed by a worker and every unassigned one fails; workers and reducer still finish.
        Returns the events failed."""
        events = self.fail_stalled(reason)
        if not self.stopped and self.next_event < len(self.cmap):
            rest = list(range(self.next_event, len(self.cmap)))
            self.failed.update(rest)
            self.next_event = len(self.cmap)
            self.reasons.append(f"{len(rest)} unassigned events failed: {reason}")
            events += rest
        self._advance_phase()
        return events

    def abandon(self, reason: str) -> None:
        """End the scan now: everything unsettled or unassigned fails, with ``reason``."""
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
        for event in events:
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
        return (self.stopped or self.next_event >= len(self.cmap)) and not any(self.pending.values())

    def results_complete(self) -> bool:
        if self.awaiting_pairs:
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
            "in_flight": sum(1 for w in self.pending.values() if w),
            "awaiting_results": len(self.awaiting_pairs),
            "phase": self.phase.value,
            "stopped": self.stopped,
            "workers": sorted(w.name for w in self.workers.values() if w.alive),
            "missing_workers": sorted(w.name for w in self.workers.values() if w.alive and w.missing),
            "reducer_restarts": self.reducer_restarts,
            "failure_reasons": self.reasons[-20:],
        }
