"""The ingester service: upstream stream(s) -> units -> routed to workers, zero-copy.

For each stream a socket receives upstream multipart messages (``copy=False``); the stream's
cutter turns them into units; each unit is paired with the next assignment that mentions the
stream (positional event numbering, COMPAT §3) and sent to the assigned workers over one ROUTER
socket as ``[worker identity, header, *frames]``. The payload frames are the received
``zmq.Frame`` objects: their bytes are never copied in user space.

Backpressure: a stream's upstream socket is read only while the stream has pending
assignments (or while it discards messages before a start), so a stalled pipeline leaves data
queued in ZeroMQ instead of in Python memory.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import redis
import zmq

from dranspose.config import Settings
from dranspose.parameters import StrParameter
from dranspose.errors import ProtocolError
from dranspose.protocols.base import Kind, StreamCutter, Unit
from dranspose.services.component import Component
from dranspose.services.parking import ParkingLot, unit_bytes
from dranspose.services.upstreams import Upstream, open_upstream
from dranspose.transport import control, framing
from dranspose.transport.curve import CurveKeys, secure_server
from dranspose.transport.sockets import bind

log = logging.getLogger(__name__)

UNIT_QUEUE_LIMIT = 64
MAX_PEERS = 4096  # identities remembered on the ROUTER before stale ones are forgotten
DUMP_PREFIX = StrParameter(
    name="dump_prefix", default="", description="record every forwarded frame to {prefix}{ingester}-{mapping}.cbors"
)


@dataclass
class StreamSpec:
    """One upstream stream served by an ingester."""

    name: str
    upstream_url: str
    pattern: str  # "PULL" or "SUB" (connect, like the devices expect), "TCP" (client), "HTTP" (server)
    make_cutter: Callable[[], StreamCutter]


@dataclass
class _Stream:
    spec: StreamSpec
    cutter: StreamCutter
    upstream: Upstream
    units: collections.deque[Unit] = field(default_factory=collections.deque)
    routes: collections.deque[tuple[int, tuple[str, ...]]] = field(default_factory=collections.deque)
    waiting_for_start: bool = True
    data_index: int = 0
    units_due: int = -1  # units the current mapping takes from this stream (-1: unknown)
    units_taken: int = 0
    forwarded: int = 0
    discarded: int = 0
    malformed: int = 0
    frame_mismatches: int = 0
    rejoining: bool = False  # restarted mid-scan: align routes with the first frame number seen
    units_bytes: int = 0  # payload bytes queued in ``units``
    byte_limit: int = 1 << 62  # stop reading upstream above this (Settings.unit_queue_bytes)


class Ingester(Component):
    kind = "ingester"

    def __init__(self, name: str, settings: Settings, streams: list[StreamSpec], **kwargs: Any) -> None:
        super().__init__(name, settings, **kwargs)
        if not streams:
            raise ValueError("an ingester needs at least one stream")
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.TCP_KEEPALIVE, 1)
        self.router.setsockopt(zmq.SNDHWM, 10000)
        secure_server(self.router, CurveKeys.load(settings.curve_key_file))  # optional CURVE
        self.url = bind(self.router, settings.ingester_url)
        self.streams: dict[str, _Stream] = {}
        for spec in streams:
            cutter = spec.make_cutter()
            opener = getattr(cutter, "open_upstream", None)  # custom Python ingesters bring their own
            upstream = opener(self.ctx, spec.name, spec.upstream_url) if opener else open_upstream(self.ctx, spec.upstream_url, spec.pattern)
            self.streams[spec.name] = _Stream(
                spec, cutter, upstream, waiting_for_start=cutter.has_start, byte_limit=settings.unit_queue_bytes
            )
        self.workers: dict[bytes, float] = {}  # identity -> last ping
        self.undeliverable = 0
        self.recorder: Any = None
        self._lost: list[tuple[str, int]] = []  # (worker, event) not delivered, for the controller
        grace = settings.presence_ttl + settings.worker_grace + 5.0  # the controller re-routes before
        self.parking = ParkingLot(settings.unit_queue_bytes, grace)

    def state(self) -> dict[str, Any]:
        st = super().state()
        st.update(
            url=self.url,
            parameters=[DUMP_PREFIX.model_dump(mode="json")],
            streams=list(self.streams),
            workers=sorted(w.decode(errors="replace") for w in list(self.workers)),
            undeliverable=self.undeliverable,
            parked_units=len(self.parking),
            parked_bytes=self.parking.nbytes,
            stream_stats={
                n: {
                    "typ": s.cutter.typ,
                    "forwarded": s.forwarded,
                    "discarded": s.discarded,
                    "malformed": s.malformed,
                    "frame_mismatches": s.frame_mismatches,
                    "queued_units": len(s.units),
                    "queued_bytes": s.units_bytes,
                    "pending_routes": len(s.routes),
                }
                for n, s in self.streams.items()
            },
        )
        return st

    # ---- control
    def _on_mapping(self, msg: control.MappingAnnounced) -> None:
        self.mapping_uuid = msg.uuid
        self.parking.clear()
        due = msg.frames_per_stream
        for name, s in self.streams.items():
            s.units_due, s.units_taken = int(due.get(name, -1)), 0
            s.routes.clear()
            s.rejoining = False
            # units queued from a start message on belong to the series this mapping consumes
            keep = s.cutter.has_start and bool(s.units) and s.units[0].kind is Kind.START
            if not keep:
                s.units.clear()
                s.units_bytes = 0
                s.cutter.reset()
            s.waiting_for_start = s.cutter.has_start and not keep
            s.data_index = 0
        self._open_recorder(msg)
        if self.errors.get("recording"):
            self.publish_state()  # a refused recording is visible before the scan can finish

    def _close_recorder(self) -> None:
        """Flush and close the dump off the data thread (closing waits for the writer)."""
        if self.recorder is not None:
            threading.Thread(target=self.recorder.close, name="recorder-close", daemon=False).start()
            self.recorder = None

    def _open_recorder(self, msg: control.MappingAnnounced) -> None:
        """DUMP_PATH names the exact file (appended across scans) and wins over the
        ``dump_prefix`` parameter ({prefix}{ingester}-{mapping}.cbors); both stay under the dump root."""
        from dranspose.dumps.paths import confine, dump_root
        from dranspose.dumps.record import Recorder, dump_path

        self._close_recorder()
        prefix = msg.dump_prefix
        target = self.settings.dump_path or (dump_path(prefix, self.name, msg.uuid) if prefix else None)
        if not target:
            return
        try:
            path = confine(target, dump_root(self.settings.dump_root))
            self.recorder = Recorder(path, max_file_bytes=self.settings.dump_max_bytes)
        except Exception as exc:  # recording is optional: never stop the scan for it
            self.count_error("recording", "cannot record to %r: %s", target, exc)
            try:  # the count visible before this (maybe short) scan reports finished
                self.publish_state()
            except redis.RedisError:
                pass

    def _on_assigned(self, batches: list[control.AssignmentBatch | control.RerouteBatch]) -> None:
        for batch in batches:
            if batch.mapping != self.mapping_uuid:
                continue
            if isinstance(batch, control.RerouteBatch):
                self._on_reroute(batch)
                continue
            for event, targets in batch.events:
                for stream, workers in targets.items():
                    s = self.streams.get(stream)
                    if s is not None:
                        s.routes.append((event, workers))

    def _on_reroute(self, batch: control.RerouteBatch) -> None:
        """A worker died: routes not used yet go to the new workers; for routes already used
        (the frames went to the dead worker) the added workers' parts are undeliverable."""
        changes: dict[str, dict[int, tuple[str, ...]]] = {}
        added_of: dict[int, tuple[str, ...]] = {}
        for event, targets, added in batch.events:
            added_of[event] = added
            for stream, workers in targets.items():
                if stream in self.streams:
                    changes.setdefault(stream, {})[event] = workers
        for stream, new in changes.items():
            s = self.streams[stream]
            remaining = dict(new)
            s.routes = collections.deque(
                (event, remaining.pop(event, workers)) for event, workers in s.routes
            )
            for event in remaining:  # the route was used already
                parked = self.parking.take(batch.dead, event, stream)
                for w in added_of.get(event, ()):
                    if w not in new[event]:
                        continue
                    if parked is None:  # the dead worker had the frames
                        self._lost.append((w, event))
                    else:  # never delivered: the new worker gets them now
                        self._send(s, event, (w,), Unit(Kind.DATA, parked.frames), record=False)
        log.warning(
            "ingester %s: worker %s died; %d events re-routed", self.name, batch.dead, len(batch.events)
        )

    def _on_mapping_resumed(self, msg: control.MappingAnnounced) -> None:
        """Started while a scan may be running: take its assignments from the start and skip
        to the frame the detector is at (by frame number) instead of waiting for a start."""
        self._on_mapping(msg)
        for s in self.streams.values():
            s.rejoining = True

    def _align(self, s: _Stream) -> bool:
        """Rejoining: drop the routes of frames that went by (reported undeliverable: events
        that completed already are ignored by the controller). False: wait for more routes."""
        unit = s.units[0]
        if unit.kind is not Kind.DATA or unit.frame_number is None:
            s.rejoining = False  # a new series, or no frame numbers: positional as usual
            return True
        target = unit.frame_number + (1 if s.cutter.has_start else 0)
        skipped = []
        while s.units_taken < target and s.routes:
            event, workers = s.routes.popleft()
            s.units_taken += 1
            self._lost.extend((w, event) for w in workers)
            skipped.append(event)
        if s.units_taken < target:
            return False
        s.rejoining = False
        s.data_index = unit.frame_number
        log.warning(
            "ingester %s: stream %s rejoined the scan at frame %d; %d earlier events skipped",
            self.name, s.spec.name, unit.frame_number, len(skipped),
        )
        return True

    def control_handlers(self) -> dict[str, Callable[[Any], None]]:
        return {"mapping": self._on_mapping, "mapping_resumed": self._on_mapping_resumed, "assigned": self._on_assigned}

    # ---- data
    def _receive(self, s: _Stream) -> None:
        try:
            messages = s.upstream.receive()
        except Exception as exc:  # e.g. a TCP splitter refusing a line: drop it, keep the ingester
            s.malformed += 1
            self.count_error("upstream", "stream %s: upstream message dropped: %r", s.spec.name, exc)
            return
        for parts in messages:
            self._cut(s, parts)

    def _cut(self, s: _Stream, parts: list[Any]) -> None:
        try:
            units = s.cutter.feed(parts)
        except ProtocolError as exc:
            s.malformed += 1
            self.count_error("malformed", "stream %s: malformed message dropped: %s", s.spec.name, exc)
            return
        except Exception as exc:  # a cutter bug must not stop the ingester
            s.malformed += 1
            self.count_error("cutter", "stream %s: cutter failed: %s", s.spec.name, exc, exc_info=True)
            return
        for unit in units:
            if s.waiting_for_start:
                rejoin = s.rejoining and unit.kind is Kind.DATA and unit.frame_number is not None
                if unit.kind is not Kind.START and not rejoin:
                    s.discarded += 1
                    continue
                s.waiting_for_start = False
            s.units.append(unit)
            s.units_bytes += unit_bytes(unit.frames)

    def _check_frame_number(self, s: _Stream, unit: Unit) -> None:
        if unit.kind is Kind.START:
            s.data_index = 0
        elif unit.kind is Kind.DATA:
            if unit.frame_number is not None and unit.frame_number != s.data_index:
                s.frame_mismatches += 1
                if s.frame_mismatches <= 10 or s.frame_mismatches % 1000 == 0:
                    log.warning(
                        "stream %s: frame number %s where %s was expected (mismatch %d); routing by position",
                        s.spec.name, unit.frame_number, s.data_index, s.frame_mismatches,
                    )
            s.data_index += 1

    def _dispatch(self, s: _Stream) -> None:
        while s.units and s.routes:
            if s.rejoining and not self._align(s):
                break
            unit = s.units.popleft()
            s.units_bytes -= unit_bytes(unit.frames)
            event, workers = s.routes.popleft()
            s.units_taken += 1
            self._check_frame_number(s, unit)
            if unit.kind is Kind.END and s.cutter.has_start:
                s.waiting_for_start = True
            if workers:
                self._send(s, event, workers, unit)
            else:
                s.discarded += 1
            if self.recorder is not None and s.units_taken == s.units_due:
                if all(t.units_taken == t.units_due for t in self.streams.values() if t.units_due >= 0):
                    self._close_recorder()  # every frame of the mapping recorded

    def _park(self, worker: str, event: int, stream: str, frames: list[Any], exc: Exception) -> None:
        """Keep an undeliverable unit for a possible re-route; report what falls out."""
        self.undeliverable += 1
        log.warning(
            "ingester %s: event %d stream %s: worker %s unreachable (%s); kept for re-routing", self.name, event, stream, worker, exc
        )
        self._report_lost(self.parking.park(worker, event, stream, frames))

    def _unpark(self, worker: str) -> None:
        """A worker became reachable (it pinged): deliver what was kept for it."""
        for item in self.parking.take_worker(worker):
            s = self.streams.get(item.stream)
            if s is not None:
                self._send(s, item.event, (worker,), Unit(Kind.DATA, item.frames), record=False)

    def _report_lost(self, pairs: list[tuple[str, int]]) -> None:
        for worker, event in pairs:
            self._lost.append((worker, event))
            self.count_error("undeliverable", "event %d: worker %s unreachable; its part of the event failed", event, worker)

    def _send(self, s: _Stream, event: int, workers: tuple[str, ...], unit: Unit, record: bool = True) -> None:
        typ = unit.meta.get("typ") or s.cutter.typ if unit.meta else s.cutter.typ
        header = framing.encode_header(event, [(s.spec.name, typ, len(unit.frames))], self.mapping_uuid)
        for worker in workers:
            try:
                self.router.send_multipart([worker.encode(), header, *unit.frames], copy=False)
            except zmq.ZMQError as exc:
                self._park(worker, event, s.spec.name, unit.frames, exc)
        s.forwarded += 1
        if self.recorder is not None and record:
            self.recorder.record(event, {s.spec.name: (typ, unit.frames)})

    def _handle_ping(self) -> None:
        while True:
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            now = time.monotonic()
            self.workers[parts[0]] = now
            if len(self.workers) > MAX_PEERS:  # peers that stopped pinging: forget them (bounded)
                self.workers = {w: t for w, t in self.workers.items() if now - t < 10.0}
            if self.parking.items:
                self._unpark(parts[0].decode(errors="replace"))

    @staticmethod
    def _wants_input(s: _Stream) -> bool:
        """Read upstream only for pending assignments, or to discard messages before a start."""
        room = len(s.units) < UNIT_QUEUE_LIMIT and s.units_bytes < s.byte_limit
        return room and (bool(s.routes) or (s.waiting_for_start and not s.units))

    def run(self) -> None:
        """The data loop; returns when :meth:`stop` was called."""
        poller = zmq.Poller()
        poller.register(self.control_socket, zmq.POLLIN)
        poller.register(self.router, zmq.POLLIN)
        registered: dict[Any, _Stream] = {}
        while not self.stopping.is_set():
            self.loop_beat = time.monotonic()  # liveness: the data loop turns
            for s in self.streams.values():
                s.upstream.maintain()
                src = s.upstream.pollable
                want = src is not None and self._wants_input(s)
                for old in [k for k, v in registered.items() if v is s and (k is not src or not want)]:
                    poller.unregister(old)
                    del registered[old]
                if want and src not in registered:
                    poller.register(src, zmq.POLLIN)
                    registered[src] = s
            ready = dict(poller.poll(100))
            if self.control_socket in ready:
                try:
                    self.handle_control()
                except redis.RedisError as exc:  # a Redis outage must not end the process
                    self.count_error("redis", "control message not applied: %s", exc)
            if self.router in ready:
                self._handle_ping()
            for src, s in list(registered.items()):
                if src in ready or (hasattr(src, "fileno") and src.fileno() in ready):
                    for _ in range(64):  # drain a burst, then look at control again
                        self._receive(s)
                        if not self._wants_input(s) or not s.upstream.has_more():
                            break
            for s in self.streams.values():
                if s.units and s.routes:
                    self._dispatch(s)
            if self.parking.items:
                self._report_lost(self.parking.expire())
            if self._lost and self.mapping_uuid:
                try:
                    report = control.encode_report(control.IngesterReport(self.name, self._lost))
                    self.redis.xadd(self.keys.done(self.mapping_uuid), {control.REPORT_FIELD: report})
                    self._lost = []
                except redis.RedisError as exc:
                    self.count_error("redis", "cannot report undeliverable events (%s); retrying", exc)
        self._close()

    def _close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        for s in self.streams.values():
            s.upstream.close()
        self.router.close(linger=0)
