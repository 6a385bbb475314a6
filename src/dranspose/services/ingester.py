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

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import redis
import zmq

from dranspose.config import Settings
from dranspose.core.flow import Coalescer
from dranspose.core.pairing import StreamPairing
from dranspose.parameters import StrParameter
from dranspose.errors import ProtocolError
from dranspose.protocols.base import Kind, StreamCutter, Unit
from dranspose.services.component import Component
from dranspose.services.parking import ParkingLot
from dranspose.services.upstreams import Upstream, open_upstream
from dranspose.transport import batching, control, framing
from dranspose.transport.curve import CurveKeys, secure_server
from dranspose.transport.sockets import bind, send_parts

log = logging.getLogger(__name__)

UNIT_QUEUE_LIMIT = 4096  # units queued per stream at most (and unit_queue_bytes)
READ_BURST = 64  # upstream messages one pass of the loop reads at most (then control is looked at)
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
    make_upstream: Callable[[zmq.Context], Upstream] | None = None  # instead of open_upstream(url, pattern)


@dataclass
class _Stream:
    spec: StreamSpec
    cutter: StreamCutter
    upstream: Upstream | None  # opened by Ingester.open()
    pairing: StreamPairing  # queued units, routes, their pairing and the frame check (core)
    forwarded: int = 0
    discarded: int = 0  # units routed to no worker
    malformed: int = 0
    header_key: tuple[str, int, str | None, bool] | None = None  # (typ, frames, mapping, whole) of header_parts
    header_parts: tuple[bytes, bytes] = (b"", b"")  # framing.header_parts of that key


class Ingester(Component):
    kind = "ingester"

    def __init__(self, name: str, settings: Settings, streams: list[StreamSpec], **kwargs: Any) -> None:
        super().__init__(name, settings, **kwargs)
        if not streams:
            raise ValueError("an ingester needs at least one stream")
        self.router: zmq.Socket | None = None  # bound by open()
        self.url: str | None = None  # the advertised URL for workers, once bound
        self.streams: dict[str, _Stream] = {}
        for spec in streams:
            cutter = spec.make_cutter()
            self.streams[spec.name] = _Stream(spec, cutter, None, StreamPairing(cutter.has_start, byte_limit=settings.unit_queue_bytes))
        self.workers: dict[bytes, float] = {}  # identity -> last ping
        self.undeliverable = 0
        self._stamp: tuple[float, str] = (0.0, "")  # the last read time and its ISO form
        self.recorder: Any = None
        self._lost: list[tuple[str, int]] = []  # (worker, event) not delivered, for the controller
        self._out_events: dict[str, list[tuple[int, str, list[Any]]]] = {}  # what each outbox entry holds
        self.outbox = batching.Outbox()  # several small events per message when they queue up

        grace = settings.presence_ttl + settings.worker_grace + 5.0  # the controller re-routes before
        self.parking = ParkingLot(settings.unit_queue_bytes, grace)

    def open(self) -> None:
        """Bind the socket workers connect to and open every upstream."""
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker of the same name takes over
        self.router.setsockopt(zmq.TCP_KEEPALIVE, 1)
        self.router.setsockopt(zmq.SNDHWM, 10000)
        self.router.copy_threshold = batching.COPY_THRESHOLD  # packed batches: copied, not lent
        secure_server(self.router, CurveKeys.load(self.settings.curve_key_file))  # optional CURVE
        self.url = bind(self.router, self.settings.ingester_url, self.settings.advertise_host)
        for s in self.streams.values():
            spec = s.spec
            opener = getattr(s.cutter, "open_upstream", None)  # custom Python ingesters bring their own
            if spec.make_upstream is not None:
                s.upstream = spec.make_upstream(self.ctx)
            elif opener is not None:
                s.upstream = opener(self.ctx, spec.name, spec.upstream_url)
            else:
                s.upstream = open_upstream(self.ctx, spec.upstream_url, spec.pattern)

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
                    "discarded": s.discarded + s.pairing.discarded,
                    "malformed": s.malformed + getattr(s.upstream, "malformed", 0),
                    "frame_mismatches": s.pairing.frames.gaps,
                    "queued_units": len(s.pairing.units),
                    "queued_bytes": s.pairing.units_bytes,
                    "pending_routes": len(s.pairing.routes),
                    "assignment_wait_s": round(s.pairing.assignment_wait_s, 4),
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
            # units queued from a start message on belong to the series this mapping consumes
            if not s.pairing.new_mapping(int(due.get(name, -1))):
                s.cutter.reset()
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

    def _on_assignment(self, batch: control.AssignmentBatch | control.AssignmentRun) -> None:
        """Routes for the frames of each stream this ingester serves."""
        for stream, routes in batch.for_streams(self.streams).items():
            self.streams[stream].pairing.add_routes(routes)

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
            remaining = s.pairing.reroute(new)
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
            s.pairing.rejoining = True

    def control_handlers(self) -> dict[str, Callable[[Any], None]]:
        return {"mapping": self._on_mapping, "mapping_resumed": self._on_mapping_resumed, "assigned": self._on_assigned}

    # ---- data
    def _receive(self, s: _Stream, received_at: float) -> int:
        """Read what the upstream has now; returns how many messages (0: it had nothing).
        ``received_at`` (``time.time()`` when the poll saw it readable) stamps the units cut."""
        assert s.upstream is not None
        try:
            messages = s.upstream.receive()
        except Exception as exc:  # e.g. a TCP splitter refusing a line: drop it, keep the ingester
            s.malformed += 1
            self.count_error("upstream", "stream %s: upstream message dropped: %r", s.spec.name, exc)
            return 1
        for parts in messages:
            self._cut(s, parts, received_at)
        return len(messages)

    def _cut(self, s: _Stream, parts: list[Any], received_at: float) -> None:
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
            unit.received_at = received_at
            s.pairing.add_unit(unit)

    def _created_at(self, received_at: float) -> str:
        """A unit's ``created_at`` (EventData.created_at: when this ingester read its frame);
        the units of one read pass share it, so it is formatted once per pass."""
        if received_at != self._stamp[0] or not received_at:
            self._stamp = (received_at, framing.now_iso(received_at or None))
        return self._stamp[1]

    def _dispatch(self, s: _Stream) -> None:
        for pair in s.pairing.pairs():
            if pair.expected_frame is not None:
                gaps = s.pairing.frames.gaps
                pair.unit.meta["expected_frame"] = pair.expected_frame
                if gaps <= 10 or gaps % 1000 == 0:  # a detector dropping frames must not flood the log
                    log.warning(
                        "stream %s: frame %s where %s was expected (gap %d); routing stays positional",
                        s.spec.name, pair.unit.frame_number, pair.expected_frame, gaps,
                    )
            if s.pairing.rejoined_at is not None:
                log.warning(
                    "ingester %s: stream %s rejoined the scan at frame %d; %d earlier events skipped",
                    self.name, s.spec.name, s.pairing.rejoined_at, len(s.pairing.skipped),
                )
                s.pairing.rejoined_at = None
                s.pairing.skipped.clear()
            if pair.workers:
                self._send(s, pair.event, pair.workers, pair.unit, created_at=self._created_at(pair.unit.received_at), whole=pair.whole)
            else:
                s.discarded += 1
            if self.recorder is not None and s.pairing.complete():
                if all(t.pairing.complete() for t in self.streams.values() if t.pairing.units_due >= 0):
                    self._close_recorder()  # every frame of the mapping recorded
        if s.pairing.lost:  # rejoining: the parts of frames that went by are reported undeliverable
            self._lost.extend(s.pairing.lost)
            s.pairing.lost.clear()

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

    def _send(
        self, s: _Stream, event: int, workers: tuple[str, ...], unit: Unit, record: bool = True, created_at: str | None = None,
        whole: bool = False,
    ) -> None:
        """``whole``: the unit is all that each of ``workers`` gets of the event (said in the
        header: the worker need not wait for its own copy of the assignment)."""
        typ = unit.meta.get("typ") or s.cutter.typ if unit.meta else s.cutter.typ
        key = (typ, len(unit.frames), self.mapping_uuid, whole)
        if key != s.header_key:  # the header's JSON but for event number and stamp, kept per stream
            s.header_key = key
            s.header_parts = framing.header_parts(((s.spec.name, typ, len(unit.frames)),), self.mapping_uuid, whole)
        header = framing.fill_header(event, s.header_parts, created_at or framing.now_iso())
        now = time.monotonic()
        nbytes = unit.nbytes if unit.nbytes >= 0 else None
        for worker in workers:
            self._out_events.setdefault(worker, []).append((event, s.spec.name, unit.frames))
            full = self.outbox.add(worker, [header, *unit.frames], now, nbytes)
            if full is not None:
                self._deliver(worker, full, self._out_events.pop(worker))
        s.forwarded += 1
        if self.recorder is not None and record:
            self.recorder.record(event, {s.spec.name: (typ, unit.frames)})

    def _deliver(self, worker: str, parts: list[Any], units: list[tuple[int, str, list[Any]]]) -> None:
        try:
            send_parts(self.router, [worker.encode(), *parts])  # type: ignore[arg-type]
        except zmq.ZMQError as exc:
            for event, stream, frames in units:  # kept for a re-route or for when it pings
                self._park(worker, event, stream, frames, exc)

    def _flush_out(self) -> None:
        """Send what waits: one message per event, or a batch where several queued up."""
        for worker, parts, _n in self.outbox.drain():
            self._deliver(str(worker), parts, self._out_events.pop(str(worker), []))

    def _handle_ping(self) -> None:
        while True:
            try:
                parts = self.router.recv_multipart(zmq.NOBLOCK)  # type: ignore[union-attr]
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
        return s.pairing.wants_input(UNIT_QUEUE_LIMIT)

    def run(self) -> None:
        """The data loop; returns when :meth:`stop` was called."""
        self.enter_data_loop()
        poller = zmq.Poller()
        poller.register(self.control_socket, zmq.POLLIN)
        poller.register(self.router, zmq.POLLIN)
        registered: dict[Any, _Stream] = {}
        coalesce = Coalescer(target=READ_BURST)  # fast small messages: a short wait packs several per pass
        last_pass = time.perf_counter()
        while not self.stopping.is_set():
            self.loop_beat = time.monotonic()  # liveness: the data loop turns
            pause = coalesce.pause()
            if pause:
                time.sleep(pause)
            for s in self.streams.values():
                assert s.upstream is not None, "start() before run()"
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
            woke = time.time()  # the read time of what this pass reads (EventData.created_at)
            if self.control_socket in ready:
                try:
                    self.handle_control()
                except redis.RedisError as exc:  # a Redis outage must not end the process
                    self.count_error("redis", "control message not applied: %s", exc)
            if self.router in ready:
                self._handle_ping()
            received = 0
            for src, s in list(registered.items()):
                if src in ready or (hasattr(src, "fileno") and src.fileno() in ready):
                    for k in range(READ_BURST):  # drain a burst, then look at control again
                        got = self._receive(s, woke)
                        received += got
                        # asked once per pass: asking is a syscall (2-4 us a message, a fifth of
                        # the ingester's time in bursts), a read that finds nothing ~5 us once
                        if not got or not self._wants_input(s) or (k == 0 and not s.upstream.has_more()):  # type: ignore[union-attr]
                            break
            started, last_pass = last_pass, time.perf_counter()
            coalesce.observe(received, last_pass - started)
            now = time.monotonic()
            for s in self.streams.values():
                if s.pairing.units and s.pairing.routes:
                    self._dispatch(s)
                s.pairing.note_waiting(now)
            self._flush_out()
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
        self._flush_out()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        for s in self.streams.values():
            if s.upstream is not None:
                s.upstream.close()
        if self.router is not None:
            self.router.close(linger=0)
