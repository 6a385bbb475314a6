"""Recovery of the controller's scan state from Redis, and of Redis's state from the controller.

* Controller restart: the scan lives in Redis (the current mapping, its assignment stream and
  its completion stream). :func:`resume` rebuilds the :class:`Scan` from them: the map is
  compiled again from its source, assignments and re-routes are re-applied in order, and the
  completion stream is read again from its start by the scheduler's loop.
* Redis restarted empty: :class:`RedisWatch` notices its marker key is gone, writes back the
  parameters and the current mapping it keeps a copy of, and announces the mapping again so
  components that started meanwhile join. Components re-register by their heartbeats.
"""

from __future__ import annotations

import logging
import time
import uuid as _uuid
from typing import TYPE_CHECKING, Any

from dranspose.core.scan import Scan
from dranspose.core.triggermap import CompiledMap, compile_request
from dranspose.errors import ControlMessageError, DransposeError
from dranspose.services import gc_pause
from dranspose.services.controller.credits import CreditBook
from dranspose.transport import control

if TYPE_CHECKING:
    from dranspose.services.controller.scheduler import Scheduler

log = logging.getLogger(__name__)


def _compile(info: control.MappingAnnounced) -> CompiledMap:
    """The map as the previous controller compiled it (the wrap choice from its frame counts)."""
    with gc_pause.paused():
        cmap = compile_request(info.source, True)
        if info.frames_per_stream and cmap.frames_per_stream() != info.frames_per_stream:
            cmap = compile_request(info.source, False)
    return cmap


def resume(sched: "Scheduler") -> bool:
    """Rebuild the current scan from Redis (called once when the controller starts).
    Returns True when a scan was resumed."""
    raw = sched.redis.get(sched.keys.mapping())
    if raw is None:
        return False
    try:
        info = control.decode_mapping(raw)
        cmap = _compile(info)
    except (ControlMessageError, DransposeError, ValueError) as exc:
        log.warning("controller: the current mapping in Redis cannot be resumed: %s", exc)
        return False
    sched.refresh_components()
    scan = Scan(cmap)
    credits = CreditBook(sched._flow_limits())  # adaptive credits start over; fixed ones are read back
    for name, st in sched.components["worker"].items():
        scan.add_worker(name, st.get("tags", ["generic"]), credits.admit(name, st.get("capacity")), st.get("service_uuid"))
    assigned = 0
    last = "-"
    while True:
        entries = sched.redis.xrange(sched.keys.assigned(info.uuid), min=last, count=1000)
        if last != "-":
            entries = entries[1:]
        if not entries:
            break
        for entry_id, fields in entries:
            last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            try:
                batch = control.decode_assignment(fields.get(control.ASSIGNED_FIELD.encode(), b""))
            except ControlMessageError as exc:
                log.warning("controller: assignment batch skipped while resuming: %s", exc)
                continue
            if isinstance(batch, control.RerouteBatch):
                for event, targets, added in batch.events:
                    scan.restore_reroute(batch.dead, event, targets, added)
            else:
                for event, targets in batch.events:
                    scan.restore_assignment(event, targets)
                    assigned += 1
    with sched.lock:
        if sched.scan is not None:
            return False  # a map was posted meanwhile: it wins
        sched.scan, sched.mapping_uuid, sched.credits = scan, info.uuid, credits
        sched._done_id = "0-0"  # completion reports are replayed by the loop
        sched.liveness.reset()
        sched.liveness.fault_seen = True
        sched.scan_started, sched.scan_finished = time.time(), None
        gone = {n for n, w in scan.workers.items() if w.alive} - set(sched.components["worker"])
        reroutes = sched.liveness.workers_changed(scan, {n: {} for n in gone}, {}, gone)
        sched._publish_reroutes(reroutes)
    sched.liveness.note(
        logging.WARNING, "controller", f"restarted; resumed scan {info.uuid} with {assigned} events assigned before"
    )
    sched.redis_watch.remember(info)
    return True


class RedisWatch:
    """Notices a Redis that restarted empty and puts the controller's state back."""

    CHECK_INTERVAL = 1.0

    def __init__(self, sched: "Scheduler") -> None:
        self.sched = sched
        self.marker = f"{sched.keys.prefix}:controller:epoch"
        self.epoch = _uuid.uuid4().hex
        self.parameters: dict[bytes, bytes] = {}
        self.mapping: control.MappingAnnounced | None = None
        self._last = 0.0
        self._initialised = False
        self.restarts = 0

    def remember(self, info: control.MappingAnnounced) -> None:
        self.mapping = info

    def check(self) -> bool:
        """Every CHECK_INTERVAL: keep a copy of the parameters; if the marker is gone, Redis
        lost everything: write parameters and mapping back. Returns True after a restore."""
        now = time.monotonic()
        if now - self._last < self.CHECK_INTERVAL:
            return False
        self._last = now
        r = self.sched.redis
        if r.get(self.marker) is not None:
            self.parameters = r.hgetall(self.sched.keys.parameters())
            return False
        r.set(self.marker, self.epoch)
        if not self._initialised:
            self._initialised = True
            return False  # our own start: nothing to restore
        self.restore(r)
        return True

    def restore(self, r: Any) -> None:
        self.restarts += 1
        pipe = r.pipeline(transaction=False)
        if self.parameters:
            pipe.hset(self.sched.keys.parameters(), mapping=self.parameters)
        if self.mapping is not None:
            pipe.set(self.sched.keys.mapping(), control.encode_mapping(self.mapping))
        pipe.execute()
        self.sched.liveness.hold(self.sched.settings.presence_ttl + 2.0)  # components re-register
        self.sched.liveness.note(
            logging.ERROR, "redis", f"restarted empty; parameters ({len(self.parameters)}) and the current mapping written back"
        )

