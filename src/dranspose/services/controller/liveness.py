"""The controller's liveness checks around the pure scan state (timing here, decisions in
:mod:`dranspose.core.scan`).

Called by the scheduler with its lock held, each refresh:

* workers: presence lost -> *missing* (keeps place and constraints) for ``worker_grace``;
  back with the same service uuid -> restored; still gone, or left, or restarted under a new
  uuid -> dead: its unfinished events are re-routed (a :class:`RerouteBatch` to publish);
* stuck ``process_event`` (a worker's advertised ``busy`` event running longer than
  ``event_stuck_after``): reported once per event; with ``event_timeout`` the worker is
  treated as dead;
* reducer: a new process (service uuid) is noticed through its reports (the scan fails what
  the old one held); no reducer at all for ``reducer_wait`` at the end -> scan abandoned;
* stalls: results not confirmed ``result_wait`` after the workers finished expire; after a
  fault (an ingester or worker died or restarted during the scan), events whose frames do not
  come while nothing happens for ``stall_timeout`` fail (without a fault a slow detector is
  waited for as long as it takes).

Every decision is logged with the component and the event numbers and kept in ``events``
(shown in ``/api/v1/status``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from dranspose.config import Settings
from dranspose.core.runs import Reroute
from dranspose.core.scan import Phase, Scan

log = logging.getLogger(__name__)

MAX_LISTED = 20  # event numbers named in one log line


def _events(events: list[int]) -> str:
    head = ", ".join(map(str, events[:MAX_LISTED]))
    return f"[{head}{', ...' if len(events) > MAX_LISTED else ''}] ({len(events)})"


@dataclass
class Liveness:
    settings: Settings
    missing_since: dict[str, float] = field(default_factory=dict)
    stuck: dict[str, dict[str, Any]] = field(default_factory=dict)  # worker -> {event, seconds}
    events: list[dict[str, Any]] = field(default_factory=list)  # fault log for the status
    _signature: tuple[Any, ...] = ()
    _since: float = 0.0
    _no_reducer_since: float | None = None
    fault_seen: bool = False  # an ingester or worker failed during this scan: stalls are bounded
    _ingesters: dict[str, str] = field(default_factory=dict)  # name -> service uuid
    _hold_until: float = 0.0
    stuck_loops: set[str] = field(default_factory=set)

    def hold(self, seconds: float) -> None:
        """Components vanished together with Redis: treat absences as missing for a while."""
        self._hold_until = time.monotonic() + seconds

    def reset(self) -> None:
        """A new scan."""
        self.missing_since.clear()
        self.stuck.clear()
        self.events.clear()
        self._signature, self._since, self._no_reducer_since = (), time.monotonic(), None
        self.fault_seen = False

    def ingesters_changed(self, view: dict[str, Any], scanning: bool) -> None:
        """Note ingesters that vanished or came back as a new process."""
        for name, uuid in list(self._ingesters.items()):
            st = view.get(name)
            if st is None and time.monotonic() < self._hold_until:
                continue
            if st is None:
                self.note(logging.ERROR if scanning else logging.INFO, f"ingester {name}", "gone (no heartbeat)")
                del self._ingesters[name]
                self.fault_seen = self.fault_seen or scanning
            elif st.get("service_uuid") != uuid:
                what = "restarted (new process); it rejoins the scan" if scanning else "restarted (new process)"
                self.note(logging.WARNING if scanning else logging.INFO, f"ingester {name}", what)
                self.fault_seen = self.fault_seen or scanning
        for name, st in view.items():
            self._ingesters[name] = str(st.get("service_uuid"))

    def note(self, level: int, component: str, what: str, events: list[int] | None = None) -> None:
        text = f"{component}: {what}" + (f"; events {_events(events)}" if events else "")
        log.log(level, text)
        self.events.append({"time": time.time(), "component": component, "what": what, "events": (events or [])[:1000]})
        del self.events[:-100]

    # ---- workers
    def workers_changed(
        self, scan: Scan, previous: dict[str, Any], view: dict[str, Any], died: set[str]
    ) -> list[tuple[str, list[Reroute]]]:
        """Compare the worker view with the last one; returns re-routes to publish."""
        out: list[tuple[str, list[Reroute]]] = []
        now = time.monotonic()
        for name in set(previous) - set(view):
            slot = scan.workers.get(name)
            if slot is None or not slot.alive:
                continue
            held = now < self._hold_until
            if (name in died or held) and self.settings.worker_grace > 0:
                scan.mark_missing(name)
                self.missing_since.setdefault(name, now)
                ttl, grace = self.settings.presence_ttl, self.settings.worker_grace
                self.note(logging.WARNING, f"worker {name}", f"no heartbeat for {ttl:.1f} s; keeps its place for {grace:.1f} s")
            else:
                out.append((name, self._dead(scan, name, "left" if name not in died else "presence expired")))
        for name, st in view.items():
            slot = scan.workers.get(name)
            if slot is None or not slot.alive:
                continue
            if st.get("service_uuid") != slot.service_uuid and slot.service_uuid is not None:
                out.append((name, self._dead(scan, name, "restarted (new process)")))
            elif name in self.missing_since and scan.mark_back(name):
                gone = now - self.missing_since.pop(name)
                self.note(logging.WARNING, f"worker {name}", f"back after {gone:.1f} s; kept its place and constraints")
        for name, since in list(self.missing_since.items()):
            if now - since >= self.settings.worker_grace and now >= self._hold_until:
                del self.missing_since[name]
                slot = scan.workers.get(name)
                if slot is not None and slot.alive and slot.missing:
                    gone = self.settings.presence_ttl + self.settings.worker_grace
                    out.append((name, self._dead(scan, name, f"no heartbeat for {gone:.1f} s")))
        return [(n, r) for n, r in out if r]

    def _dead(self, scan: Scan, name: str, why: str) -> list[Reroute]:
        self.missing_since.pop(name, None)
        self.fault_seen = True
        owed = scan.owes(name)
        reroutes, failed = scan.reroute_worker(name)
        if owed:
            self.note(logging.ERROR, f"worker {name}", f"dead ({why}); re-routing its unfinished events", [e for e, _t, _a in reroutes])
        else:
            self.note(logging.INFO, f"worker {name}", f"gone ({why}); it held no unfinished events")
        if failed:
            self.note(logging.ERROR, f"worker {name}", "no live worker can take these events; failed", failed)
        return reroutes

    def check_stuck(self, scan: Scan, workers: dict[str, Any]) -> list[tuple[str, list[Reroute]]]:
        """Report process_event calls running too long; with event_timeout, the worker is dead."""
        out: list[tuple[str, list[Reroute]]] = []
        now = time.time()
        current: dict[str, dict[str, Any]] = {}
        for name, st in workers.items():
            busy = st.get("busy")
            if not (isinstance(busy, list) and len(busy) == 2):
                continue
            event, started = busy
            seconds = now - float(started)
            if seconds < self.settings.event_stuck_after:
                continue
            current[name] = {"event": event, "seconds": round(seconds, 1)}
            if self.stuck.get(name, {}).get("event") != event:
                self.note(logging.WARNING, f"worker {name}", f"process_event stuck for {seconds:.1f} s", [int(event)])
            timeout = self.settings.event_timeout
            slot = scan.workers.get(name)
            if timeout is not None and seconds >= timeout and slot is not None and slot.alive:
                why = f"process_event of event {event} ran {seconds:.1f} s (event timeout {timeout} s)"
                out.append((name, self._dead(scan, name, why)))
        self.stuck = current
        return [(n, r) for n, r in out if r]

    def check_loops(self, components: dict[str, dict[str, Any]]) -> None:
        """Report data loops that stopped turning while the heartbeat thread lives (a reducer
        stuck in process_result, an ingester stuck in a cutter); once per stall."""
        limit = self.settings.event_stuck_after
        for kind in ("reducer", "ingester"):
            for name, st in components.get(kind, {}).items():
                key = f"{kind} {name}"
                age = st.get("loop_age")
                if isinstance(age, (int, float)) and age >= limit:
                    if key not in self.stuck_loops:
                        self.stuck_loops.add(key)
                        self.note(logging.WARNING, key, f"data loop has not turned for {age:.1f} s")
                elif key in self.stuck_loops:
                    self.stuck_loops.discard(key)
                    self.note(logging.WARNING, key, "data loop turns again")

    # ---- stalls
    def check_stalls(self, scan: Scan, components: dict[str, dict[str, Any]]) -> None:
        """Bounded waits: unconfirmed results, events that cannot be formed, no reducer."""
        now = time.monotonic()
        signature = (
            scan.completed, len(scan.failed), scan.next_event, scan.awaiting_count(),
            scan.open_count(), scan.phase, scan.reducer_restarts,
        )
        if signature != self._signature:
            self._signature, self._since = signature, now
        quiet = now - self._since
        if scan.phase is Phase.FINISHED:
            return
        if not components.get("reducer"):
            if self._no_reducer_since is None:
                self._no_reducer_since = now
            elif scan.phase is Phase.REDUCING and now - self._no_reducer_since >= self.settings.reducer_wait:
                scan.abandon(f"no reducer for {self.settings.reducer_wait:.0f} s")
                self.note(logging.ERROR, "reducer", f"none alive for {self.settings.reducer_wait:.0f} s; scan ended as failed")
                return
        else:
            self._no_reducer_since = None
        if scan.phase is Phase.REDUCING and scan.awaiting_count() and quiet >= self.settings.result_wait:
            expired = scan.expire_results()
            self.note(logging.ERROR, "reducer", f"results not received {quiet:.1f} s after the workers finished; failed", expired)
            return
        busy = any(st.get("busy") for st in components.get("worker", {}).values())
        missing = any(w.missing for w in scan.alive_workers())
        stalled_out = self.fault_seen and quiet >= self.settings.stall_timeout
        if scan.phase is Phase.RUNNING and stalled_out and not busy and not missing:
            if scan.open_count():
                stalled = scan.give_up(f"their frames did not arrive within {self.settings.stall_timeout:.0f} s")
                self.note(logging.ERROR, "ingester", f"frames missing for {quiet:.1f} s; this and every later event failed", stalled)
