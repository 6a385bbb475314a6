"""The controller's I/O around the pure scan state: component discovery and presence,
assignment batches ahead of the data, completion batches, finish instructions.

Thread-safety: every access to ``scan`` and the component view holds ``self.lock``; REST
handlers and the scheduler thread share this object.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from typing import Any

import redis

from dranspose.config import Settings
from dranspose.core.flow import FlowLimits
from dranspose.core.runs import Reroute
from dranspose.core.scan import Phase, Scan
from dranspose.core.triggermap import CompiledMap
from dranspose.dumps.paths import check_prefix, dump_root
from dranspose.dumps.scanfiles import write_scan_files
from dranspose.errors import ControlMessageError, MappingError
from dranspose.services import gc_pause
from dranspose.services.controller import recovery
from dranspose.services.controller.credits import CreditBook
from dranspose.services.controller.liveness import Liveness
from dranspose.services.controller.recovery import RedisWatch
from dranspose.store.connection import connect
from dranspose.store.keys import Keys
from dranspose.transport import assignments, control

log = logging.getLogger(__name__)
HISTORY_SECONDS = 310  # processed counts kept for /load and the status page's rate chart

KINDS = ("ingester", "worker", "reducer")
ASSIGN_BATCH = 4096  # events per round at most (a run is a few bytes per event)
REFRESH_INTERVAL = 0.25
REPEAT_INSTRUCTION = 1.0
KEEP_OLD_SCANS = 3
SCAN_STREAM_TTL = 60  # seconds the assigned:/done: streams of a finished scan are kept


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys()
        self.redis = connect(settings.redis_url)
        self.lock = threading.RLock()
        self.scan: Scan | None = None
        self.mapping_uuid: str | None = None
        self.components: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.lost: dict[str, list[int]] = {}  # worker -> failed events, for the status
        self.history: list[tuple[float, dict[str, int]]] = []  # (time, processed per worker)
        self.stopping = threading.Event()
        self._done_id = "0-0"
        self.bad_reports = 0  # malformed completion reports seen
        self.liveness = Liveness(settings)
        self.redis_watch = RedisWatch(self)
        self._resumed = False
        self._outbox: list[bytes] = []  # assignment batches not written to Redis yet
        self._old_mappings: list[str] = []  # uuids of the last scans (their streams are deleted)
        self._last_refresh = 0.0
        self._last_instruction = 0.0
        self._instructed: str | None = None
        self._thread: threading.Thread | None = None
        self.started_at = time.time()
        self.scan_started: float | None = None
        self.scan_finished: float | None = None
        self.credits = CreditBook(self._flow_limits())
        self._waiting_since: float | None = None  # monotonic time the scan began waiting for workers

    def _flow_limits(self) -> FlowLimits:
        return FlowLimits(memory_bytes=self.settings.inflight_bytes)

    # ---- components
    def refresh_components(self) -> None:
        view: dict[str, dict[str, dict[str, Any]]] = {}
        died: set[str] = set()
        pipe = self.redis.pipeline(transaction=False)
        for kind in KINDS:
            pipe.smembers(self.keys.members(kind))
        members = pipe.execute()
        for kind, names_b in zip(KINDS, members):
            names = sorted(n.decode() for n in names_b)
            states = self.redis.mget([self.keys.state(kind, n) for n in names]) if names else []
            view[kind] = {}
            for name, raw in zip(names, states):
                if raw is None:
                    self.redis.srem(self.keys.members(kind), name)  # presence expired: died
                    died.add(name)
                    continue
                view[kind][name] = json.loads(raw)
        with self.lock:
            previous = self.components.get("worker", {})
            self.components = view
            now = time.time()
            self.history.append((now, {n: int(s.get("processed", 0)) for n, s in view["worker"].items()}))
            self.history = [h for h in self.history if now - h[0] <= HISTORY_SECONDS]
            for name in set(previous) - set(view["worker"]):
                if name not in died:
                    log.info("worker %s left", name)
            self.liveness.ingesters_changed(view["ingester"], self.scan is not None and self.scan.phase is not Phase.FINISHED)
            self.liveness.check_loops(view)
            if self.scan is not None:
                reroutes = self.liveness.workers_changed(self.scan, previous, view["worker"], died)
                reroutes += self.liveness.check_stuck(self.scan, view["worker"])
                self._publish_reroutes(reroutes)
                self._check_reducer_instance(view["reducer"])
                self.liveness.check_stalls(self.scan, view)
            self._admit_workers()

    def _check_reducer_instance(self, reducers: dict[str, dict[str, Any]]) -> None:
        """A reducer advertising a new process: the old one's results are lost (noticed here
        even before the new one reports anything)."""
        assert self.scan is not None
        for name, st in reducers.items():
            inst = st.get("service_uuid")
            if not isinstance(inst, str) or self.scan.reducer_instance in (None, inst):
                continue
            before = set(self.scan.failed)
            if self.scan.reducer_progress({}, False, inst, []):
                lost = sorted(self.scan.failed - before)
                self.liveness.note(logging.ERROR, f"reducer {name}", "restarted (new process); results it held are lost", lost)

    def _publish_reroutes(self, reroutes: list[tuple[str, list[Reroute]]]) -> None:
        """Announce a dead worker's re-routed events on the assignment stream (in order)."""
        if self.mapping_uuid is None:
            return
        for dead, batch in reroutes:
            for i in range(0, len(batch), ASSIGN_BATCH):
                raw = control.encode_reroute(self.mapping_uuid, dead, batch[i : i + ASSIGN_BATCH])
                self.redis.xadd(self.keys.assigned(self.mapping_uuid), {control.ASSIGNED_FIELD: raw})

    def _serving_ingesters(self) -> list[dict[str, Any]]:
        if self.scan is None:
            return []
        needed = set(self.scan.cmap.streams)
        return [s for s in self.components["ingester"].values() if needed & set(s.get("streams", []))]

    def _not_usable(
        self, name: str, st: dict[str, Any], ingesters: list[dict[str, Any]], mapping_known: bool = False
    ) -> str | None:
        """Why a registered worker cannot take part in the scan yet (None: it can).
        ``mapping_known``: the mapping is being announced now (it reaches the worker before
        any assignment)."""
        if not mapping_known and st.get("mapping_uuid") != self.mapping_uuid:
            return "has not received the mapping"
        unreached = [s.get("name") for s in ingesters if name not in s.get("workers", [])]
        if unreached:
            return f"not connected to ingester(s) {unreached}"
        reducers = {r.get("service_uuid") for r in self.components["reducer"].values()}
        if not reducers:
            return "no reducer is running"
        if st.get("reducer_uuid") not in reducers:
            return "not connected to the reducer"
        return None

    def _waiting_reason(self) -> str:
        """Why no usable worker serves the scan's next event (for the log and the progress)."""
        assert self.scan is not None
        ingesters = self._serving_ingesters()
        why = {n: self._not_usable(n, st, ingesters) for n, st in self.components["worker"].items()}
        detail = "; ".join(f"{n}: {w}" for n, w in why.items() if w) or "no registered worker has the tags it needs"
        return f"event {self.scan.next_event} has no usable worker ({detail})"

    def _check_waiting(self, scan: Scan) -> None:
        """End the scan as failed once it waited ``worker_wait_timeout`` s for a usable worker."""
        if not scan.waiting_for_workers or scan.stopped:
            self._waiting_since = None
            return
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            log.warning("mapping %s: waiting for workers: %s", self.mapping_uuid, self._waiting_reason())
            return
        if now - self._waiting_since < self.settings.worker_wait_timeout:
            return
        reason = f"no usable worker for {self.settings.worker_wait_timeout:g} s: {self._waiting_reason()}"
        lost = scan.give_up(reason, unassigned_only=True)
        self._waiting_since = None
        log.error("mapping %s failed: %s; %d events failed", self.mapping_uuid, reason, len(lost))

    def _admit_workers(self) -> None:
        """Add live workers that are reachable by every ingester of the scan and connected to
        the reducer (a worker that has not joined yet is waited for, never failed)."""
        if self.scan is None:
            return
        ingesters = self._serving_ingesters()
        for name, st in self.components["worker"].items():
            slot = self.scan.workers.get(name)
            if slot is not None and slot.alive:
                continue
            if slot is not None and st.get("service_uuid") == slot.service_uuid:
                continue  # the dead worker's last heartbeat, not a restart
            if self._not_usable(name, st, ingesters) is None:
                capacity = self.credits.admit(name, st.get("capacity"))
                self.scan.add_worker(name, st.get("tags", ["generic"]), capacity, st.get("service_uuid"))
                log.info("worker %s joined the scan", name)

    # ---- mapping
    def start_mapping(self, cmap: CompiledMap) -> str:
        """Validate ``cmap`` against the live components and make it the current scan."""
        self.refresh_components()
        with self.lock:
            served = {s for st in self.components["ingester"].values() for s in st.get("streams", [])}
            missing = [s for s in cmap.streams if s not in served]
            if missing:
                raise MappingError(f"no ingester serves stream(s) {missing}; served: {sorted(served)}")
            workers = self.components["worker"]
            needed = cmap.min_workers()
            if len(workers) < needed:
                raise MappingError(f"only {len(workers)} workers available, but {needed} required by the map")
            for tags in cmap.tag_sets():
                if not any(tags <= set(st.get("tags", [])) for st in workers.values()):
                    raise MappingError(f"no worker has the tags {sorted(tags)} the map needs ({len(workers)} workers)")
            new_uuid = str(uuid.uuid4())
            scan = Scan(cmap)
            same_streams = self.scan is not None and set(self.scan.cmap.streams) == set(cmap.streams)
            credits = CreditBook(self._flow_limits(), self.credits.round_trips(),
                                 self.credits.carried_credits() if same_streams else None)
            ingesters = [s for s in self.components["ingester"].values() if set(cmap.streams) & set(s.get("streams", []))]
            for name, st in workers.items():  # the others join in _admit_workers once usable
                if self._not_usable(name, st, ingesters, mapping_known=True) is None:
                    scan.add_worker(name, st.get("tags", ["generic"]), credits.admit(name, st.get("capacity")), st.get("service_uuid"))
            param_values, _digest = self.parameter_values()
            dump_prefix = param_values.get("dump_prefix", b"").decode(errors="replace") or None
            if dump_prefix:
                check_prefix(dump_prefix, dump_root(self.settings.dump_root))  # 400 before anything starts
            info = control.MappingAnnounced(new_uuid, cmap.source, len(workers), dump_prefix, cmap.frames_per_stream())
            self.redis.set(self.keys.mapping(), control.encode_mapping(info))
            self.announce(dataclasses.replace(info, source=None))  # names the map, does not repeat it
            self.redis_watch.remember(info)
            self._outbox = []
            # earlier scans' streams: nobody reads them any more (a late report may have made one
            # again after the previous delete, so the last few scans are deleted once more)
            if self.mapping_uuid is not None:
                self._old_mappings = [*self._old_mappings[-(KEEP_OLD_SCANS - 1):], self.mapping_uuid]
            old = [k for u in self._old_mappings for k in (self.keys.assigned(u), self.keys.done(u))]
            if old:
                self.redis.delete(*old)
            self.scan, self.mapping_uuid, self.credits = scan, new_uuid, credits
            self._done_id = "0-0"
            self._instructed = None
            self.lost = {}
            self.liveness.reset()
            self.scan_started, self.scan_finished = time.time(), None
            self._waiting_since = None
            log.info("mapping %s: %d events over streams %s", new_uuid, len(cmap), list(cmap.streams))
        gc_pause.settle()  # the previous scan is garbage now; no full collection during this one
        if dump_prefix:
            try:
                paths = write_scan_files(dump_prefix, new_uuid, control.source_json(cmap.source), param_values)
                log.info("mapping and parameters of %s saved to %s", new_uuid, paths)
            except OSError as exc:
                log.error("cannot write the mapping/parameter dump with prefix %r: %s", dump_prefix, exc)
        self.step()
        return new_uuid

    def served_streams(self) -> set[str]:
        self.refresh_components()
        with self.lock:
            return {x for st in self.components["ingester"].values() for x in st.get("streams", [])}

    def parameter_values(self) -> tuple[dict[str, bytes], str]:
        """Every parameter's raw value (declared defaults included) and their hash: the same
        digest workers and reducer compute, so scan software can compare it with results'."""
        from dranspose.core.parameters import build_parameters, merge_descriptions, parameters_hash
        from dranspose.parameters import parameter_list_adapter

        with self.lock:
            states = [st for kind in KINDS for st in self.components[kind].values()]
        groups = []
        for st in states:
            try:
                groups.append(parameter_list_adapter.validate_python(st.get("parameters", [])))
            except ValueError:
                continue
        try:
            descriptions = merge_descriptions(*groups)
        except ValueError:
            descriptions = {}
        stored: dict[bytes, bytes] = self.redis.hgetall(self.keys.parameters())  # type: ignore[assignment]
        raw = {k.decode(): v for k, v in stored.items()}
        values: dict[str, bytes] = {str(k): p.data for k, p in build_parameters(descriptions, raw).items()}
        return values, str(parameters_hash(values))

    def stop_scan(self) -> None:
        with self.lock:
            if self.scan is None:
                return
            self.scan.stop()
            self.announce(control.Stop(self.mapping_uuid))

    def announce(self, msg: control.Update) -> None:
        self.redis.xadd(self.keys.updates(), {control.UPDATE_FIELD: control.encode_update(msg)}, maxlen=1000, approximate=True)

    # ---- the loop
    def _apply_done(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        assert self.scan is not None
        now = time.monotonic()
        plain: list[control.WorkerReport] = []  # completion reports applied together (Scan.workers_done)
        for _id, fields in entries:
            try:
                msg = control.decode_report(fields.get(control.REPORT_FIELD.encode(), b""))
            except ControlMessageError as exc:
                self.bad_reports += 1
                log.warning("controller: completion report ignored (%d so far): %s", self.bad_reports, exc)
                continue
            if isinstance(msg, control.WorkerReport) and not msg.cancelled and not msg.finished:
                plain.append(msg)
                continue
            self._apply_worker_reports(plain, now)  # in order: before anything that follows them
            plain = []
            if isinstance(msg, control.WorkerReport):
                if msg.cancelled:
                    self.scan.cancel_pending(msg.worker, msg.cancelled)
                self._apply_worker_reports([msg], now)
                if msg.finished:
                    self.scan.worker_finished(msg.worker, msg.sent)
            elif isinstance(msg, control.IngesterReport):
                self.scan.undeliverable(msg.lost)
                for w, e in msg.lost:
                    self.lost.setdefault(w, []).append(e)
            else:
                before = set(self.scan.failed)
                if self.scan.reducer_progress(msg.processed, msg.finished, msg.instance, msg.received):
                    lost = sorted(self.scan.failed - before)
                    self.liveness.note(
                        logging.ERROR, f"reducer {msg.reducer}", "restarted (new process); results it held are lost", lost
                    )
        self._apply_worker_reports(plain, now)

    def _apply_worker_reports(self, reports: list[control.WorkerReport], now: float) -> None:
        assert self.scan is not None
        if not reports:
            return
        self.scan.workers_done([(m.worker, m.done, m.sent, m.results) for m in reports])
        for msg in reports:
            credits = self.credits.report(msg.worker, now, msg.n, msg.busy, msg.nbytes, msg.starved)
            if credits is not None:
                self.scan.set_capacity(msg.worker, credits)

    def step(self, block_ms: int = 0) -> None:
        """One round: read completions, assign, give finish instructions."""
        with self.lock:
            scan, mapping = self.scan, self.mapping_uuid
            done_id = self._done_id
        if scan is None or mapping is None:
            if block_ms:
                self.stopping.wait(block_ms / 1000)
            return
        replies = self.redis.xread({self.keys.done(mapping): done_id}, block=block_ms or None, count=1000)
        with self.lock:
            if self.scan is not scan:
                return
            for _key, entries in replies or []:
                self._done_id = entries[-1][0]
                self._apply_done(entries)
            pipe = self.redis.pipeline(transaction=False)
            while True:
                runs = scan.assign_runs(ASSIGN_BATCH)
                for run in runs:
                    self._outbox.append(assignments.encode(mapping, run))
                if sum(len(run) for run in runs) < ASSIGN_BATCH:
                    break  # stopped by credits, workers or the map's end: another call would assign nothing
            outbox, self._outbox = self._outbox, []
            for raw in outbox:  # kept and retried if Redis fails: assigned events must be announced
                pipe.xadd(self.keys.assigned(mapping), {control.ASSIGNED_FIELD: raw})
            if scan.held_back:
                self.credits.held_back(scan.held_back)
                scan.held_back.clear()
            self._check_waiting(scan)
            # finish instructions: at once when due, then repeated (late joiners, lost reads)
            now = time.monotonic()
            target = "workers" if scan.phase is Phase.FINISHING else "reducer" if scan.ready_for_reducer_finish() else None
            if target is not None and (target != self._instructed or now - self._last_instruction >= REPEAT_INSTRUCTION):
                pipe.xadd(self.keys.updates(), {control.UPDATE_FIELD: control.encode_update(control.Finish(mapping, target))})
                self._last_instruction, self._instructed = now, target
            if scan.phase is Phase.FINISHED and self.scan_finished is None:
                self.scan_finished = time.time()
                log.info("mapping %s finished: %s", mapping, scan.progress())
                # per-scan streams go away after a grace period (late reports still land)
                pipe.expire(self.keys.assigned(mapping), SCAN_STREAM_TTL)
                pipe.expire(self.keys.done(mapping), SCAN_STREAM_TTL)
            try:
                pipe.execute()
            except redis.RedisError:
                self._outbox = outbox + self._outbox
                raise

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self._resumed:
                    try:
                        recovery.resume(self)  # a Redis error: retried next round
                    except redis.RedisError:
                        raise
                    except Exception:
                        log.exception("controller: resuming the scan from Redis failed")
                    self._resumed = True
                self.redis_watch.check()
                if time.monotonic() - self._last_refresh >= REFRESH_INTERVAL:
                    self._last_refresh = time.monotonic()
                    self.refresh_components()
                self.step(block_ms=10)
            except redis.RedisError as exc:
                log.warning("controller: Redis error %s; retrying in 1 s", exc)
                self.stopping.wait(1.0)
            except Exception:
                log.exception("controller: scheduler step failed; continuing")
                self.stopping.wait(0.1)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="controller-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    # ---- reporting
    def progress(self) -> dict[str, Any]:
        with self.lock:
            if self.scan is None:
                return {"last_assigned": 0, "completed_events": 0, "total_events": 0, "finished": False}
            out = self.scan.progress()
            out["mapping_uuid"] = self.mapping_uuid
            out["credits"] = self.credits.view()
            out["stuck"] = [{"worker": w, **info} for w, info in self.liveness.stuck.items()]
            out["faults"] = [f"{f['component']}: {f['what']}" for f in self.liveness.events[-20:]]
            return out

    def load(self, intervals: list[int]) -> dict[str, Any]:
        with self.lock:
            history = list(self.history)
        if not history:
            return {}
        now, latest = history[-1]
        out: dict[str, Any] = {}
        for worker, count in latest.items():
            rates = {}
            for interval in intervals:
                past = next((h for h in history if now - h[0] <= interval), history[0])
                dt = max(now - past[0], 1e-9)
                rates[str(interval)] = (count - past[1].get(worker, 0)) / dt if now > past[0] else 0.0
            out[worker] = {"processed": count, "events_per_s": rates}
        return out

