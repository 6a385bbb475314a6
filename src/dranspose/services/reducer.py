"""The reducer service: results in arrival order -> the user's ``process_result``, strictly one
at a time; ``timer()`` in its own thread; ``publish`` served over HDF REST.

``process_result``, ``timer`` and ``finish`` are serialised by one lock (user code never runs
concurrently with itself). HTTP reads take ``publish_rlock`` when the user provides one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from typing import Any, Callable

import redis
import zmq
from fastapi import FastAPI

from dranspose.config import Settings
from dranspose.core.flow import Coalescer
from dranspose.core.scan import pairs_by_worker
from dranspose.core.parameters import merge_descriptions
from dranspose.errors import DransposeError, HookError, ProtocolError, UnpicklingRefused
from dranspose.hooks import ReducerHooks, describe_parameters, load_class
from dranspose.services.access import protect, redact
from dranspose.services.component import Component
from dranspose.services.http import BackgroundServer
from dranspose.services.timer import TimerThread
from dranspose.transport import batching, control, results
from dranspose.transport.curve import CurveKeys, secure_server
from dranspose.transport.resend import RecentReports
from dranspose.transport.sockets import RESULT_PIPE_MESSAGES, bind, host_of, http_url, readable, recv_parts

log = logging.getLogger(__name__)

# seconds between the confirmations of received results sent to the controller while results
# come (after every pass once the workers were told to finish: the scan's end does not wait for
# this clock). Each report is a Redis write the data loop waits for and a round of the
# controller; at 0.02 s a 50 Hz scan sent one for every 1.6 results, and the controller's
# scheduler spent twice its CPU and the reducer's loop 1.5x (per-thread CPU from /proc, two
# 20 s scans each way). Progress lags by this much at most, as it does for the workers' reports.
REPORT_INTERVAL = 0.25
# ... or once this many results came since the last report: at high rates a report's size (its
# encoding in this loop, the controller's decoding) stays bounded (1 MHz: one every 16 ms)
REPORT_BATCH = 16384
MAX_EARLY = 4096  # results buffered for a mapping not announced yet
MAX_EARLY_BYTES = 256 * 1024 * 1024  # ... and their bytes (a peer cannot fill the memory with them)
READ_BURST = 256  # result messages one pass of the loop reads at most (then control is looked at)
# results one pass aims at when they come fast (at least 4 kHz: see Coalescer): each worker sends
# what one of its passes made, so behind a paced detector the messages come one by one, and a
# pass per message cost the reducer most of the extra CPU of a paced scan over a burst. Interleaved
# 2 kB scans paced at 17-19 kHz on two cores: p99 0.23-0.70x of a pass per message; a linger of
# 1 ms or of 4 ms (128 results) did worse than the 2 ms default; p50 at 8 kHz +0.9 ms.
RESULT_BURST = 64


class Reducer(Component):
    kind = "reducer"
    loop_stall = 60.0  # seconds without a turn of the data loop before /healthz fails

    def __init__(
        self,
        name: str,
        settings: Settings,
        reducer_class: str | None = None,
        http_host: str = "127.0.0.1",
        http_port: int | None = 5001,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, settings, **kwargs)
        self.class_path = reducer_class or settings.reducer_class
        self.cls = load_class(self.class_path) if self.class_path else None
        self.descriptions = merge_descriptions(describe_parameters(self.cls))
        self.pull: zmq.Socket | None = None  # bound by open()
        self.url: str | None = None  # the advertised result URL, once bound
        self.context: dict[str, Any] = {}
        self.hooks: ReducerHooks | None = None
        self.lock = threading.RLock()
        self.processed: dict[str, int] = {}
        self.received: dict[str, list[int]] = {}  # worker -> events of the results since the last report
        self._report_failures = 0
        self.total_processed = 0
        self._reported_total = 0  # total_processed at the last report sent (REPORT_BATCH)
        self.result_passes = 0  # loop passes that read results (total_processed / this: results per pass)
        self.stale = 0
        self.seen_mappings: set[str] = set()
        self.timer = TimerThread(lambda: self.hooks, self.lock, lambda: self.parameters)
        self.early: list[tuple[str, Any]] = []
        self._early_bytes = 0
        self.finished_mapping: str | None = None
        self._dirty = False
        self._data_ended: str | None = None  # mapping whose workers were told to finish: report at once
        self.recent = RecentReports()  # confirmations of the last seconds (a Redis restart may lose them)
        self._last_report = 0.0
        self._allow = results.result_allow_list([self.class_path, settings.worker_class], settings.pickle_allow)
        self._empty_publish: dict[str, Any] = {}
        self.latencies: list[float] = []
        from dranspose.hdfrest import FeedbackHub

        self.feedback = FeedbackHub()  # user code: context["feedback"].emit({...})
        self.context["feedback"] = self.feedback
        self.feedback_zmq: str | None = None
        self.mirror: Any = None
        from dranspose.metrics.reducer import ReducerMetrics

        self.metrics = ReducerMetrics(self)  # served at /metrics
        self.loop_beat = time.monotonic()  # the data loop's last turn (/healthz)
        self.http: BackgroundServer | None = None
        self.http_url: str | None = None  # the advertised HTTP URL, once serving
        if http_port is not None:
            self.http = BackgroundServer(self.build_app(), http_host, http_port)

    def open(self) -> None:
        """Bind the result socket, the feedback socket and the HTTP server."""
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.RCVHWM, RESULT_PIPE_MESSAGES)  # backlog waits in the workers' outboxes
        secure_server(self.pull, CurveKeys.load(self.settings.curve_key_file))  # optional CURVE
        self.url = bind(self.pull, self.settings.reducer_url, self.settings.advertise_host)
        if self.settings.feedback_url:
            self.feedback_zmq = self.feedback.bind_zmq(self.settings.feedback_url)
        if self.http is not None:
            self.http.start()
            named = host_of(self.url) if self.url.startswith("tcp://") else None
            self.http_url = http_url(self.http.host, self.http.port, self.settings.advertise_host, named)
            log.info("reducer %s: results at %s", self.name, self.http_url)

    # ---- what HDF REST serves
    @property
    def publish(self) -> Any:
        return self.hooks.publish if self.hooks is not None else self._empty_publish

    @property
    def publish_rlock(self) -> Any:
        return self.hooks.publish_rlock if self.hooks is not None else None

    def build_app(self, lifespan: Any = None) -> FastAPI:
        """The reducer's HTTP app (state, HDF REST, feedback); ``lifespan`` runs the reducer
        when the app is served on its own (``uvicorn dranspose.reducer:app``)."""
        app = FastAPI(title="dranspose reducer", lifespan=lifespan)
        protect(app)  # token on mutating calls, Host check, body size

        @app.get("/api/v1/state")
        def reducer_state() -> dict[str, Any]:
            return redact(self.state())  # type: ignore[no-any-return]

        @app.get("/api/v1/status", summary="Liveness, as the old reducer: true while it runs")
        def reducer_status() -> bool:
            return not self.stopping.is_set()

        from dranspose import hdfrest

        hdfrest.mount_feedback(app, self.feedback)  # Server-Sent Events at /feedback
        from dranspose.services import observe

        observe.install_reducer(app, self)  # /metrics, /healthz, the viewer at /viewer
        hdfrest.mount(app, self)
        return app

    def state(self) -> dict[str, Any]:
        st = super().state()
        st.update(
            url=self.url,
            http=self.http_url,
            feedback_sse=f"{self.http_url}/feedback" if self.http_url is not None else None,
            feedback_zmq=self.feedback_zmq,
            hsds_mirror=getattr(self.mirror, "status", None),
            reducer_class=self.class_path,
            parameters=[d.model_dump(mode="json") for d in self.descriptions.values()],
            processed=dict(self.processed),
            total_processed=self.total_processed,
            result_passes=self.result_passes,
            stale_results=self.stale,
        )
        return st

    def assigned_key(self, mapping_uuid: str) -> str | None:
        return None  # the reducer needs no assignments

    # ---- lifecycle
    def _load_parameters(self) -> None:
        with self.lock:
            self.reload_parameters()

    def _worker_classes(self) -> list[str]:
        return [st["worker_class"] for st in self.member_states("worker") if st.get("worker_class")]

    def _on_mapping(self, msg: control.MappingAnnounced) -> None:
        self._load_parameters()
        self._allow = results.result_allow_list(
            [self.class_path, self.settings.worker_class], self.settings.pickle_allow, advertised=self._worker_classes()
        )
        with self.lock:
            self.mapping_uuid = msg.uuid
            self.seen_mappings.add(self.mapping_uuid)
            self.processed = {}
            self.received = {}
            self.recent = RecentReports()
            self.finished_mapping = None
            self._data_ended = None
            if self.cls is not None:
                try:
                    self.hooks = ReducerHooks(self.cls, self.parameters, self.context, self.user_state())
                except (HookError, DransposeError) as exc:
                    self.hooks = None
                    self.count_error("hook", "cannot create the reducer object: %s", exc, exc_info=True)
        self._start_mirror()
        self.timer.wake()
        early, self.early, self._early_bytes = self.early, [], 0
        for mapping, result in early:
            if mapping == self.mapping_uuid:
                self._process(result)
        self._dirty = True

    def _start_mirror(self) -> None:
        """Mirror ``publish`` into HSDS when a domain is configured (off the result path)."""
        from dranspose.hdfrest.hsds_mirror import HSDSMirror

        if self.mirror is not None:
            self.mirror.stop()
        try:
            self.mirror = HSDSMirror.from_settings(self, self.settings)
            if self.mirror is not None:
                self.mirror.start()
        except Exception as exc:  # an unusable mirror must not stop the scan
            self.mirror = None
            self.count_error("hsds", "HSDS mirror not started: %s", exc)

    def _on_finish(self, msg: control.Finish) -> None:
        if msg.uuid != self.mapping_uuid:
            return
        if msg.target == "workers":
            # every event is done: the controller now waits for this reducer's counts before
            # it asks for finish, so they go out after every pass, not on the report clock
            self._data_ended = msg.uuid
            self._drain()
            self._report()
            return
        if msg.target != "reducer":
            return
        if self.finished_mapping == self.mapping_uuid:
            self._report(force=True)
            return
        self._drain()  # results already queued belong before finish
        with self.lock:
            self.call_finish(self.hooks)
            self.finished_mapping = self.mapping_uuid
        if self.mirror is not None:  # final flush, never blocking the reducer
            threading.Thread(target=self.mirror.finish, name="hsds-finish", daemon=True).start()
        self.publish_state()  # error counts visible before the scan reports finished
        self._report(force=True)

    def control_handlers(self) -> dict[str, Callable[[Any], None]]:
        return {"mapping": self._on_mapping, "parameters": lambda _msg: self._load_parameters(), "finish": self._on_finish}

    # ---- results
    def _receive(self) -> int:
        """One result message (one result, or a batch of several: transport/batching); whatever
        it contains, the reducer goes on (counted, logged). Returns how many results it held
        (a malformed message, dropped whole, counts as one: a message was read)."""
        assert self.pull is not None
        parts = recv_parts(self.pull)
        try:
            singles = list(batching.split_parsed(parts, results.frames_declared))
        except ProtocolError as exc:
            self.count_error("result_malformed", "result message dropped: %s", exc)
            return 1
        for parsed, single in singles:
            if parsed is not None:  # result arrays must not keep a whole packed batch alive
                single[2:] = batching.detach(single[2:])
            self._receive_one(single, parsed)
        return len(singles)

    def _receive_one(self, parts: list[Any], parsed: Any = None) -> None:
        """One result (``parsed``: its header, already read from a batch); whatever it
        contains, the reducer goes on (counted, logged)."""
        header: dict[str, Any] | None = None
        try:
            header = results.decode_header(parts, parsed)
            self._accept(parts, header)
            return
        except UnpicklingRefused as exc:
            self.count_error("result_refused", "result dropped: %s", exc)
        except ProtocolError as exc:
            self.count_error("result_malformed", "result dropped: %s", exc)
        except Exception as exc:  # a bug or a hostile message must not end the scan
            self.count_error("result_failed", "result of %d frames dropped: %r", len(parts), exc, exc_info=True)
        self._count_dropped(header)

    def _count_dropped(self, header: dict[str, Any] | None) -> None:
        """A worker's result of the current scan that could not be used still counts as handled:
        the controller waits for every result a worker sent, and must not wait forever."""
        if header is not None and self.mapping_uuid and header.get("mapping") == self.mapping_uuid:
            worker = header["worker"]
            self.processed[worker] = self.processed.get(worker, 0) + 1
            self._dirty = True

    def _accept(self, parts: list[Any], header: dict[str, Any]) -> None:
        result, mapping = results.decode(parts, self._allow, header)
        if mapping is not None and mapping != self.mapping_uuid:
            size = sum(len(p) for p in parts)
            if mapping not in self.seen_mappings and len(self.early) < MAX_EARLY and self._early_bytes + size <= MAX_EARLY_BYTES:
                self._early_bytes += size
                self.early.append((mapping, result))  # the mapping announcement is still on its way
                return
            self.stale += 1
            log.warning("result of event %s for mapping %s dropped (current %s)", result.event_number, mapping, self.mapping_uuid)
            return
        self._process(result)

    def _process(self, result: Any) -> None:
        with self.lock:
            if self.hooks is not None:
                try:
                    t0 = time.perf_counter()
                    self.hooks.process_result(result, self.parameters)
                    self.metrics.observe_result(time.perf_counter() - t0)
                except HookError as exc:
                    self.count_error(
                        "process_result", "event %s: %s\n%s", result.event_number, exc, "".join(traceback.format_exception(exc.cause))
                    )
        worker = str(result.worker)
        self.processed[worker] = self.processed.get(worker, 0) + 1
        self.received.setdefault(worker, []).append(int(result.event_number))
        self.total_processed += 1
        self._dirty = True

    def _drain(self) -> None:
        while self.pull is not None and readable(self.pull):
            self._receive()

    def _report(self, force: bool = False) -> None:
        if not self.mapping_uuid:  # no scan to report to
            self.received.clear()
            self._dirty = False
            return
        if not (self._dirty or force):
            return
        received, self.received = self.received, {}
        report = control.ReducerReport(
            self.name, dict(self.processed), self.finished_mapping == self.mapping_uuid, str(self.service_uuid), received
        )
        self._last_report = time.monotonic()
        try:
            self.redis.xadd(self.keys.done(self.mapping_uuid), {control.REPORT_FIELD: control.encode_report(report)})
        except redis.RedisError as exc:  # counts are cumulative: the next report repairs it
            self.received = _merged(received, self.received)
            self._last_report += 0.5  # Redis down: retry in half a second, report the first failure
            self._report_failures += 1
            if self._report_failures == 1:
                self.count_error("redis", "progress report failed (%s); retrying", exc)
            return
        self._report_failures = 0
        self._dirty = False
        self._reported_total = self.total_processed
        self.recent.add(self._last_report, [(w, e) for w, events in received.items() for e in events])

    def _report_due(self) -> bool:
        """Every ``REPORT_INTERVAL`` while results come, or once ``REPORT_BATCH`` results wait;
        after every pass once the workers were told to finish (unless Redis just failed: then
        its retry time holds)."""
        if self._data_ended == self.mapping_uuid and not self._report_failures:
            return True
        if self.total_processed - self._reported_total >= REPORT_BATCH and not self._report_failures:
            return True
        return time.monotonic() - self._last_report >= REPORT_INTERVAL

    def _poll_timeout_ms(self) -> int:
        """How long the loop may wait for results: until the next report is due when results
        wait to be reported (so that a report is at most ``REPORT_INTERVAL`` late), else 100 ms."""
        if not self._dirty:
            return 100
        left = REPORT_INTERVAL - (time.monotonic() - self._last_report)
        return max(1, min(100, math.ceil(left * 1000)))

    def look_up(self, client: redis.Redis) -> None:
        """Heartbeat thread: whether Redis was replaced (the data loop does not ask)."""
        self.look_for_redis_replaced(client)

    def _resend_after_redis_restart(self) -> None:
        """Redis was replaced (the heartbeat thread saw it): reports it held unread may be
        gone; send the recent ones again."""
        now = time.monotonic()
        if self.redis_was_replaced() and self.mapping_uuid:
            again = self.recent.take_all(now)
            log.warning("reducer %s: Redis restarted; sending %d recent confirmations again", self.name, len(again))
            self.received = _merged(pairs_by_worker(again), self.received)
            self._dirty = True

    def run(self) -> None:
        assert self.pull is not None, "start() before run()"
        self.enter_data_loop()
        self.timer.start()
        poller = zmq.Poller()
        poller.register(self.control_socket, zmq.POLLIN)
        poller.register(self.pull, zmq.POLLIN)
        coalesce = Coalescer(target=RESULT_BURST)  # results that come fast: a short wait, fewer passes
        last_pass = time.perf_counter()
        while not self.stopping.is_set():
            self.loop_beat = time.monotonic()  # liveness: the data loop turns
            pause = coalesce.pause()
            if pause:
                time.sleep(pause)
            ready = dict(poller.poll(self._poll_timeout_ms()))
            self.loop_beat = time.monotonic()
            received = 0
            if self.pull in ready:
                for _ in range(READ_BURST):
                    received += self._receive()
                    if not readable(self.pull):
                        break
                if received:
                    self.result_passes += 1
            started, last_pass = last_pass, time.perf_counter()
            coalesce.observe(received, last_pass - started)
            if self.control_socket in ready:
                try:
                    self.handle_control()
                except redis.RedisError as exc:  # a Redis outage must not end the process
                    self.count_error("redis", "control message not applied: %s", exc)
            self._resend_after_redis_restart()
            if self._dirty and self._report_due():
                self._report()
        self.timer.stop(2)
        if self.mirror is not None:
            self.mirror.stop()
        self.feedback.close()
        if self.http is not None:
            self.http.stop()
        self.call_close(self.hooks, self.context)
        if self.pull is not None:
            self.pull.close(linger=0)


def _merged(first: dict[str, list[int]], then: dict[str, list[int]]) -> dict[str, list[int]]:
    """Results by worker: ``first``'s, then ``then``'s (reports are cumulative sets)."""
    out = {w: list(events) for w, events in first.items()}
    for w, events in then.items():
        out.setdefault(w, []).extend(events)
    return out
