"""The worker service: assemble events from every ingester, run the user's ``process_event``,
ship results to the reducer, report completions to the controller in batches.

One data thread does all ZeroMQ I/O and calls user code; during a scan it waits on Redis only
to write its (batched) completion reports: the peers to connect to and whether Redis was
replaced are looked up by the heartbeat thread (``look_up``), the map's parameters once when
the map comes.
"""

from __future__ import annotations

import logging
import math
import socket
import time
import traceback
from typing import Any, Callable

import redis
import zmq

from dranspose import threads
from dranspose.config import Settings
from dranspose.core.assembly import Assembler
from dranspose.core.flow import ReportPolicy
from dranspose.core.parameters import merge_descriptions
from dranspose.core.ticks import TickClock
from dranspose.errors import DransposeError, HookError, ProtocolError
from dranspose.event import EventData, ResultData, StreamData, construct
from dranspose.hooks import WorkerHooks, describe_parameters, load_class
from dranspose.protocol import EventNumber, HashDigest, WorkerName
from dranspose.services import loop_time
from dranspose.services.component import Component
from dranspose.transport import batching, control, framing, results
from dranspose.transport.curve import CurveKeys, secure_client
from dranspose.transport.outbox import ResultOutbox
from dranspose.transport.resend import RecentReports
from dranspose.transport.sockets import RESULT_PIPE_MESSAGES, readable, recv_parts

log = logging.getLogger(__name__)

# completions per report at most. Reports go out earlier when half the worker's credits wait
# in one (it runs dry), and at the latest DONE_INTERVAL after the oldest completion, so the
# batch limit only caps a report's size: each report costs a Redis write here, a controller
# round and an assignment run read by every ingester and worker (about a millisecond of CPU
# in all on two cores), which 64-event reports made a fifth of a 2 kB event's cost.
DONE_BATCH = 1024
# seconds the oldest unreported completion waits at most: progress lags by this much while a
# worker has work (running dry reports at once). At low event rates nearly every report is
# sent for age, and each wakes Redis, the controller and (with the assignments it frees) every
# ingester and worker: on two cores that traffic slowed the events it ran beside (at 50 Hz,
# 0.25 s instead of 0.1 s took ingester -> reducer p50 down 8%, its p99 to 0.6-0.9x). With many
# workers the wait grows with their number (see report_age_limit), so that reports sent for
# age alone stay near AGE_REPORTS_PER_S in all: each costs the controller a few microseconds
# however few events it carries, and 1,000 workers reporting every 0.1 s would double its
# cost per event at 1 MHz.
DONE_INTERVAL = 0.25
AGE_REPORTS_PER_S = 1000
MAX_DONE_INTERVAL = 1.0
RESULT_RETRY_S = 0.01  # results waiting for the reducer: tried again this often
PING_INTERVAL = 1.0
MAX_EARLY = 4096  # partial events buffered for a mapping not announced yet
MAX_EARLY_BYTES = 256 * 1024 * 1024  # ... and their bytes


def report_age_limit(n_workers: int) -> float:
    """Seconds a completion waits at most to be reported in a scan of ``n_workers`` workers:
    ``DONE_INTERVAL`` up to 250 workers, then ``n_workers / AGE_REPORTS_PER_S`` (1,000
    workers: 1 s), never more than ``MAX_DONE_INTERVAL``."""
    return min(MAX_DONE_INTERVAL, max(DONE_INTERVAL, n_workers / AGE_REPORTS_PER_S))


class Worker(Component):
    kind = "worker"

    def __init__(self, name: str, settings: Settings, worker_class: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, settings, **kwargs)
        self.class_path = worker_class or settings.worker_class
        self.cls = load_class(self.class_path) if self.class_path else None
        self.descriptions = merge_descriptions(describe_parameters(self.cls))
        self.tags = list(settings.worker_tags)
        self.capacity = settings.worker_capacity
        self.context: dict[str, Any] = {}
        self.hooks: WorkerHooks | None = None
        self.param_hash: HashDigest | None = None
        self.assembler = Assembler()
        self.dealers: dict[str, zmq.Socket] = {}  # ingester name -> socket
        self.peers: dict[str, tuple[str, str | None]] = {}  # ingester name -> (url, service uuid)
        self.reducer: zmq.Socket | None = None  # created by open(), connected by discovery
        self.reducer_peer: tuple[str, str | None] | None = None  # (url, service uuid) connected to
        self.curve = CurveKeys.load(settings.curve_key_file)  # optional CURVE on data sockets
        self.done: list[int] = []
        self.report_policy = ReportPolicy(DONE_BATCH, DONE_INTERVAL)
        self.recent_done, self.recent_results = RecentReports(), RecentReports()  # a Redis restart may lose reports
        # (ingester states, reducer states) as the heartbeat thread last found them, and the
        # lookup the data loop applied last (compared by identity: only the heartbeat writes it)
        self.peers_found: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._peers_applied: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self.busy_s = 0.0  # seconds the data loop spent working (not waiting), for flow control
        self.starved_s = 0.0  # seconds it waited holding no assigned event (waiting for credits), for flow control
        self._pass_started: float | None = None  # start of the loop pass under way
        self._core_waits = loop_time.CoreWaits()  # the data loop's waits for a core, left out of busy_s
        self.payload_bytes = 0  # bytes of the events processed, for flow control
        self.results_out = batching.Outbox()  # small results share a message when they queue up
        # sends that never block: what the reducer cannot take now waits, bounded in bytes
        self.outbox = ResultOutbox(None, settings.result_queue_bytes)  # its socket is set by open()
        self._stall_reported = False
        self.done_results: list[int] = []  # the events of ``done`` that sent a result
        self.redis_failures = 0  # completion reports failed in a row
        self.results_sent = 0
        self.processed = 0
        self.finished_mapping: str | None = None
        self.early: list[tuple[str, int, dict[str, StreamData], str | None, bool]] = []  # (mapping, event, streams, created, whole)
        self._early_bytes = 0
        self.tick_interval: float | None = None
        self.ticker = TickClock(None)
        self.n_workers = 1
        self.busy: list[float] | None = None  # [event, wall-clock start] while process_event runs

    def state(self) -> dict[str, Any]:
        st = super().state()
        st.update(
            tags=self.tags,
            capacity=self.capacity,
            worker_class=self.class_path,
            parameters=[d.model_dump(mode="json") for d in self.descriptions.values()],
            ingesters=sorted(url for url, _uuid in self.peers.values()),
            reducer_uuid=self.reducer_peer[1] if self.reducer_peer else None,
            processed=self.processed,
            results_sent=self.results_sent,
            tick_interval=self.tick_interval,
            busy=self.busy,
            # events whose frames came before their assignment, and the seconds they waited for it
            assignment_waits=self.assembler.assignment_waits,
            assignment_wait_s=round(self.assembler.assignment_wait_s, 4),
            results_queued=len(self.outbox),
            results_queued_bytes=self.outbox.nbytes,
            reducer_stalled_s=round(self.outbox.stalled_for(), 1),
        )
        return st

    # ---- discovery: peers only through what they advertise in Redis
    def open(self) -> None:
        self.reducer = self.ctx.socket(zmq.PUSH)
        self.reducer.setsockopt(zmq.SNDHWM, RESULT_PIPE_MESSAGES)  # the rest waits in the byte-bounded outbox
        self.reducer.setsockopt(zmq.LINGER, 1000)
        self.reducer.copy_threshold = batching.COPY_THRESHOLD  # packed batches: copied, not lent
        secure_client(self.reducer, self.curve)
        self.outbox.sock = self.reducer
        self._poller = zmq.Poller()
        self._poller.register(self.control_socket, zmq.POLLIN)

    def _discover(self) -> None:
        """Connect to every advertised ingester and to the reducer; reconnect to a peer that
        restarted (new service uuid) or moved (new URL). Asks Redis: at start only; then the
        heartbeat thread looks (:meth:`look_up`) and the loop applies (:meth:`_apply_peers`)."""
        self._connect_peers(self._peer_states(self.redis))

    def _peer_states(self, client: redis.Redis) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The advertised states of the ingesters and of the reducer."""
        return self.member_states("ingester", client), self.member_states("reducer", client)

    def _connect_peers(self, states: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self._connect_ingesters(states[0])
        self._connect_reducer(states[1])

    def look_up(self, client: redis.Redis) -> None:
        """Heartbeat thread: the advertised ingesters and reducer, and whether Redis was replaced."""
        self.peers_found = self._peer_states(client)
        self.look_for_redis_replaced(client)

    def _apply_peers(self) -> None:
        """Data loop: connect to what the heartbeat thread found last, once."""
        found = self.peers_found
        if found is not None and found is not self._peers_applied:
            self._peers_applied = found
            self._connect_peers(found)

    def _connect_ingesters(self, states: list[dict[str, Any]]) -> None:
        for st in states:
            name, url, peer_uuid = st.get("name"), st.get("url"), st.get("service_uuid")
            if not isinstance(name, str) or not isinstance(url, str):
                continue
            if self.peers.get(name) == (url, peer_uuid):
                continue
            old = self.dealers.pop(name, None)
            if old is not None:
                log.info("worker %s: ingester %s restarted or moved; reconnecting to %s", self.name, name, url)
                self._poller.unregister(old)
                old.close(linger=0)
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, self.name.encode())
            sock.setsockopt(zmq.RCVHWM, 10000)
            secure_client(sock, self.curve)
            sock.connect(url)
            sock.send(self.service_uuid.bytes)  # the ingester learns this worker's identity
            self.dealers[name] = sock
            self.peers[name] = (url, peer_uuid)
            self._poller.register(sock, zmq.POLLIN)

    def _connect_reducer(self, states: list[dict[str, Any]]) -> None:
        live = [st for st in states if isinstance(st.get("url"), str)]
        if not live or self.reducer is None:
            return
        st = max(live, key=lambda s: float(s.get("time", 0)))  # one reducer; the freshest wins
        peer = (st["url"], st.get("service_uuid"))
        if peer == self.reducer_peer:
            return
        if self.reducer_peer is not None:
            log.info("worker %s: reducer restarted or moved; reconnecting to %s", self.name, peer[0])
            try:
                self.reducer.disconnect(self.reducer_peer[0])
            except zmq.ZMQError:
                pass
        self.reducer.connect(peer[0])
        self.reducer_peer = peer
        self.publish_state()  # the controller admits workers connected to the reducer

    def _ping(self) -> None:
        for sock in self.dealers.values():
            try:
                sock.send(self.service_uuid.bytes, zmq.NOBLOCK)
            except zmq.Again:
                pass

    # ---- scan lifecycle
    def _load_parameters(self) -> None:
        self.reload_parameters()
        self.param_hash = HashDigest(self.parameters_hash) if self.parameters_hash else None

    def _on_mapping(self, msg: control.MappingAnnounced) -> None:
        left = self.assembler.clear()
        if left and self.mapping_uuid:
            log.warning("worker %s: new mapping, %d events of the previous one never completed", self.name, len(left))
        self._flush_done(force=True)
        self.mapping_uuid = msg.uuid
        self.recent_done, self.recent_results = RecentReports(), RecentReports()
        self.results_sent = 0
        self.finished_mapping = None
        self.n_workers = max(1, msg.n_workers)
        self.report_policy.max_delay_s = report_age_limit(self.n_workers)
        self._load_parameters()
        self.hooks = None
        if self.cls is not None:
            try:
                self.hooks = WorkerHooks(self.cls, self.parameters, self.context, self.user_state())
                self.tick_interval = self.hooks.tick_interval(self.parameters)
                self.ticker = TickClock(self.tick_interval, self.n_workers)
            except (HookError, DransposeError) as exc:
                self.count_error("hook", "cannot create the worker object: %s", exc, exc_info=True)
        self._share_cores()  # after the user's constructor: Numba is loaded by then if it is used
        early, self.early, self._early_bytes = self.early, [], 0
        now = time.monotonic()
        for mapping, event, streams, created, whole in early:
            if mapping == self.mapping_uuid:
                self._add_partial(event, streams, created, now, whole)

    def _share_cores(self) -> None:
        """Size codec/kernel thread pools from the worker processes on this host."""
        try:
            host = socket.gethostname()
            local = sum(1 for st in self.member_states("worker") if st.get("host") == host)
            threads.set_local_workers(max(1, local))
        except (redis.RedisError, ValueError) as exc:
            log.warning("worker %s: cannot count the workers of this host: %s", self.name, exc)

    def _on_assignment(self, batch: control.AssignmentBatch | control.AssignmentRun) -> None:
        """The events assigned to this worker and their streams (an event whose parts came
        first is processed now)."""
        now = time.monotonic()  # frames that came first waited until now
        for event, mine in batch.for_worker(self.name):
            ev = self.assembler.expect(event, mine, now)
            if ev is not None:
                self._process(ev)

    def _on_reroute(self, batch: control.RerouteBatch) -> None:
        """Events of a dead worker this worker takes over (frames follow from the ingesters)."""
        now = time.monotonic()
        for event, targets, added in batch.events:
            if self.name in added:
                mine = frozenset(stream for stream, workers in targets.items() if self.name in workers)
                ev = self.assembler.expect(event, mine, now)
                if ev is not None:
                    self._process(ev)

    def _on_finish(self, msg: control.Finish) -> None:
        if msg.uuid != self.mapping_uuid or self.finished_mapping == self.mapping_uuid:
            return
        if msg.target != "workers":
            return
        self.call_finish(self.hooks)
        self.finished_mapping = self.mapping_uuid
        self.publish_state()  # error counts visible before the scan reports finished
        self._flush_done(force=True, finished=True)

    def _on_stop(self, msg: control.Stop) -> None:
        if msg.uuid != self.mapping_uuid:
            return
        cancelled = self.assembler.clear()
        if cancelled:
            report = control.WorkerReport(self.name, sent=self.results_sent, cancelled=list(cancelled))
            self.redis.xadd(self.keys.done(self.mapping_uuid), {control.REPORT_FIELD: control.encode_report(report)})

    def control_handlers(self) -> dict[str, Callable[[Any], None]]:
        return {
            "mapping": self._on_mapping,
            "assigned": self._on_assigned,
            "parameters": lambda _msg: self._load_parameters(),
            "finish": self._on_finish,
            "stop": self._on_stop,
        }

    # ---- events
    def _add_partial(self, event: int, streams: dict[str, StreamData], created: str | None, now: float, whole: bool = False) -> None:
        ev = self.assembler.add(event, streams, created, now, whole)
        if ev is not None:
            self._process(ev)

    def _receive(self, sock: zmq.Socket) -> None:
        """One partial event; whatever it contains, the worker goes on (counted, logged)."""
        parts = recv_parts(sock)
        try:
            self._accept(parts)
        except ProtocolError as exc:
            self.count_error("malformed", "bad message from ingester: %s", exc)
        except Exception as exc:  # a bug or a hostile message must not end the worker
            self.count_error("receive_failed", "message of %d frames from an ingester dropped: %r", len(parts), exc, exc_info=True)

    def _accept(self, parts: list[Any]) -> None:
        now = time.monotonic()  # when this message came, for events not announced yet
        for event, mapping, streams, created, whole in framing.decode_all(parts):  # one event, or a batch
            if mapping is not None and mapping != self.mapping_uuid:
                size = sum(len(f) for sd in streams.values() for f in sd.frames)
                if len(self.early) < MAX_EARLY and self._early_bytes + size <= MAX_EARLY_BYTES:
                    self._early_bytes += size
                    self.early.append((mapping, event, streams, created, whole))
                else:
                    self.count_error("stale", "event %d of unknown mapping %s dropped", event, mapping)
                continue
            self._add_partial(event, streams, created, now, whole)

    def _process(self, event: EventData) -> None:
        result: Any = None
        if self.hooks is not None:
            self.busy = [event.event_number, time.time()]  # advertised: the controller reports stuck events
            try:
                result = self.hooks.process_event(event, self.parameters, self.ticker())
            except HookError as exc:
                self.count_error(
                    "process_event", "event %d: %s\n%s", event.event_number, exc, "".join(traceback.format_exception(exc.cause))
                )
                result = None
            finally:
                self.busy = None
        self.processed += 1
        for sd in event.streams.values():  # a loop, not sum() over a generator: this runs per event
            for f in sd.frames:
                self.payload_bytes += len(f)
        if result is not None:
            rd = construct(
                ResultData,
                event_number=EventNumber(event.event_number),
                worker=WorkerName(self.name),
                parameters_hash=self.param_hash,
                payload=result,
            )
            try:
                full = self.results_out.add("reducer", results.encode(rd, self.mapping_uuid), time.monotonic())
                self.results_sent += 1
                self.done_results.append(event.event_number)
            except Exception as exc:
                self.count_error("result", "event %d: result not sent: %s", event.event_number, exc, exc_info=True)
            else:
                if full is not None:
                    self._send_results(full, batching.MAX_EVENTS)
        self.done.append(event.event_number)
        self.report_policy.completed(time.monotonic())
        if len(self.done) >= DONE_BATCH:
            self._flush_done()

    def _credits_wait(self) -> bool:
        """Would the controller send more after a report? Yes when at least as many events are
        done but unreported as are still assigned here and on their way (half this worker's
        credits or more wait in the report); else the data is what is slow, and running dry
        is no reason to report (a full batch or the report's age are). The controller's
        credit gauge (core/flow.py) reads the round trip from a worker's waits by this rule."""
        return len(self.done) >= len(self.assembler.expected)

    def _busy_now(self) -> float:
        """Seconds worked so far, including the loop pass under way."""
        started = self._pass_started
        return self.busy_s + (time.perf_counter() - started if started is not None else 0.0)

    def _send_results(self, parts: list[Any], n: int) -> None:
        try:
            self.outbox.send(parts)  # never blocks: waits in the bounded queue while the reducer takes nothing
        except Exception as exc:
            self.results_sent -= n
            self.count_error("result", "%d results not sent: %s", n, exc, exc_info=True)

    def _flush_results(self) -> None:
        """Send the results that wait: one message each, or a batch where several queued up."""
        for _dest, parts, n in self.results_out.drain():
            self._send_results(parts, n)

    def _flush_done(self, force: bool = False, finished: bool = False) -> None:
        self._flush_results()  # the reported count of sent results must be on its way
        if not self.mapping_uuid or (not self.done and not force):
            return
        # n/busy/bytes/starved: cumulative counters the controller sizes this worker's credits from
        report = control.WorkerReport(
            self.name, self.done, self.results_sent, finished, results=self.done_results,
            n=self.processed, busy=round(self._busy_now(), 6), nbytes=self.payload_bytes, starved=round(self.starved_s, 6),
        )
        try:
            self.redis.xadd(self.keys.done(self.mapping_uuid), {control.REPORT_FIELD: control.encode_report(report)})
        except redis.RedisError as exc:  # keep the batch; retried at the next flush
            self.redis_failures += 1
            if self.redis_failures == 1:
                self.count_error("redis", "completion report failed (%s); retrying", exc)
            self.report_policy.failed(time.monotonic())
            return
        if self.redis_failures:
            log.warning("worker %s: completion reports go through again (%d failed tries)", self.name, self.redis_failures)
            self.redis_failures = 0
        now = time.monotonic()
        self.report_policy.sent(now)
        self.recent_done.add(now, self.done)
        self.recent_results.add(now, self.done_results)
        self.done = []
        self.done_results = []

    def _resend_after_redis_restart(self) -> None:
        """Redis was replaced (the heartbeat thread saw it): reports it held unread may be gone;
        report the recent ones again."""
        now = time.monotonic()
        if self.redis_was_replaced() and self.mapping_uuid:
            done, results = self.recent_done.take_all(now), self.recent_results.take_all(now)
            log.warning("worker %s: Redis restarted; reporting %d recent completions again", self.name, len(done))
            self.done = done + self.done
            self.done_results = results + self.done_results
            self.report_policy.completed(now - 1.0)  # due at once

    def run(self) -> None:
        self.enter_data_loop()
        try:
            self._discover()
        except redis.RedisError as exc:
            self.count_error("redis", "cannot look up ingesters and reducer: %s", exc)
        last_ping = time.monotonic()
        while not self.stopping.is_set():
            self.loop_beat = time.monotonic()  # liveness: the data loop turns
            due = self.report_policy.timeout(len(self.done), time.monotonic(), self._credits_wait())
            timeout = 100 if due is None else math.ceil(due * 1000)
            if self.outbox.queue:  # results wait for the reducer: try again soon
                timeout = min(timeout, math.ceil(RESULT_RETRY_S * 1000))
            starving = not self.assembler.expected  # nothing assigned here: waiting for assignments
            waited_from = time.perf_counter()
            ready = dict(self._poller.poll(timeout))
            started = self._pass_started = time.perf_counter()
            waited_before = self._core_waits.read()
            if starving:
                self.starved_s += started - waited_from
            if self.control_socket in ready:
                try:
                    self.handle_control()
                except redis.RedisError as exc:  # a Redis outage must not end the process
                    self.count_error("redis", "control message not applied: %s", exc)
            idle = True
            if self.outbox.queue:
                self._drain_outbox()
            for sock in self.dealers.values():
                if sock in ready and not self.outbox.full:
                    for _ in range(64):
                        self._receive(sock)
                        if not readable(sock):
                            break
                    else:
                        idle = False  # more is queued: keep batching
            self._flush_results()
            # busy: the work of the pass, not the report's wait for Redis below (under load
            # that wait made a 2 kB event look 5-20x as long, capping the credits by the
            # backlog bound), and not its waits for a core (on two loaded cores an event took
            # 34-79 µs by the clock, 22-30 on a core); time the analysis waits off the core (I/O,
            # a device, a thread pool) is its work and counts
            wall = time.perf_counter() - started
            self.busy_s += wall - min(wall, max(0.0, self._core_waits.read() - waited_before))
            self._pass_started = None
            now = time.monotonic()
            if self.report_policy.due(len(self.done), idle and self._credits_wait(), now):
                self._flush_done()
            self._resend_after_redis_restart()
            if now - last_ping >= PING_INTERVAL:
                self._ping()
                last_ping = now
            self._apply_peers()
        self._close()

    def _drain_outbox(self) -> None:
        """Send queued results the reducer takes now; report a reducer that takes none."""
        self.outbox.flush()
        stalled = self.outbox.stalled_for()
        if stalled >= self.settings.reducer_stall_report and not self._stall_reported:
            self._stall_reported = True
            log.warning(
                "worker %s: the reducer took no result for %.1f s; %d results (%d bytes) wait%s",
                self.name, stalled, len(self.outbox), self.outbox.nbytes,
                "; no new events taken until it does" if self.outbox.full else "",
            )
        elif stalled == 0.0 and self._stall_reported:
            self._stall_reported = False
            log.warning("worker %s: the reducer takes results again", self.name)

    def _close(self) -> None:
        self._core_waits.close()
        self._flush_results()
        self.call_close(self.hooks, self.context)
        deadline = time.monotonic() + 1.0
        while self.outbox.queue and time.monotonic() < deadline:  # results still waiting: a last try
            self.outbox.flush()
            time.sleep(0.01)
        for sock in self.dealers.values():
            sock.close(linger=0)
        if self.reducer is not None:
            self.reducer.close(linger=1000)
