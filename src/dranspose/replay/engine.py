"""The replay loop: merge recorded partial events, run user workers and reducer in-process.

Merging keeps one head message per generator and merges all heads carrying the lowest event
number into one event; an exhausted (or failing) generator drops out and the others go on to
the end. User code runs through the :mod:`dranspose.hooks` adapters; an exception in it is
reported with event number and traceback, counted, and the replay continues. Results are
encoded and decoded by the live result path (:mod:`dranspose.transport.results`: the same
allow-list as the reducer), so a payload that replays cleanly runs live; a refused or
unpicklable result is an error.

Threads: events are processed in the calling thread; the reducer's ``timer`` runs in its own
thread (the live service's :class:`TimerThread`) from the start until :meth:`ReplayEngine.close`,
so it keeps running after the last event until ``stop_event``. Every reducer call
(``process_result``, ``timer``, ``finish``) holds ``reducer_lock``. Workers get the live
``state`` object and tick rule.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import zmq

from dranspose.errors import HookError
from dranspose.event import EventData, InternalWorkerMessage, ResultData
from dranspose.hooks import ReducerHooks, WorkerHooks
from dranspose.protocol import EventNumber, WorkerName
from dranspose.core.ticks import TickClock
from dranspose.replay.params import ParameterSet
from dranspose.services.timer import TimerThread
from dranspose.config import Settings
from dranspose.states import read_build_meta, user_state
from dranspose.transport import results

log = logging.getLogger(__name__)

NamedSource = tuple[str, Iterator[InternalWorkerMessage]]


@dataclass
class ReplayFailure:
    """One error during a replay: where (hook or input), which event, and the traceback."""

    where: str
    event_number: int | None
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        at = f" at event {self.event_number}" if self.event_number is not None else ""
        return f"{self.where}{at}: {self.message}"


@dataclass
class ReplaySummary:
    """Counters of a finished replay (``replay()`` returns one)."""

    events: int = 0
    results: int = 0
    payload_bytes: int = 0
    elapsed: float = 0.0
    failures: list[ReplayFailure] = field(default_factory=list)
    interrupted: bool = False

    @property
    def errors(self) -> int:
        return len(self.failures)

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.payload_bytes / 1e6 / self.elapsed if self.elapsed > 0 else 0.0

    def format(self) -> str:
        return (
            ("replay (interrupted): " if self.interrupted else "replay: ") + f"{self.events} events, {self.results} results, {self.errors} errors, "
            f"{self.elapsed:.2f} s, {self.events_per_s:.1f} events/s, {self.mb_per_s:.1f} MB/s"
        )


def _frame_len(frame: object) -> int:
    if isinstance(frame, zmq.Frame):
        return len(frame)
    return len(frame)  # type: ignore[arg-type]


def merge_events(sources: list[NamedSource], on_error: Callable[[str, BaseException], None]) -> Iterator[EventData]:
    """Merge partial events of several generators by lowest event number (see module doc)."""
    iters = [it for _, it in sources]
    names = [name for name, _ in sources]

    def advance(i: int) -> InternalWorkerMessage | None:
        try:
            return next(iters[i])
        except StopIteration:
            return None
        except Exception as exc:  # a corrupt file or a failing source: report, drop the generator
            on_error(names[i], exc)
            return None

    heads = [advance(i) for i in range(len(iters))]
    while True:
        live = [h.event_number for h in heads if h is not None]
        if not live:
            return
        lowest = min(live)
        parts = []
        for i, head in enumerate(heads):
            if head is not None and head.event_number == lowest:
                parts.append(head)
                heads[i] = advance(i)
        yield EventData.from_internals(parts)


class ReplayEngine:
    """Workers and reducer of one replay, and the loop feeding them."""

    def __init__(
        self,
        wcls: type,
        rcls: type,
        params: ParameterSet,
        nworkers: int = 2,
        broadcast_first: bool = True,
        latency: float | None = None,
        progress: Callable[[ReplaySummary], None] | None = None,
        pickle_allow: Sequence[str] = (),
    ) -> None:
        if nworkers < 1:
            raise ValueError("nworkers must be at least 1")
        self.params = params
        self.broadcast_first = broadcast_first
        self.latency = latency or 0.0
        self.progress = progress
        self.summary = ReplaySummary()
        self.reducer_lock = threading.Lock()
        self.worker_names = [WorkerName(f"replay-worker-{i}") for i in range(nworkers)]
        self.worker_contexts: list[dict[str, object]] = [{} for _ in range(nworkers)]
        # the same ``state`` objects as the live services build (name, versions, parameters_hash)
        build = read_build_meta(Settings().build_meta_file)
        self.worker_states = [
            user_state(name, "worker", tags=["generic"], parameters_hash=params.hash, build=build) for name in self.worker_names
        ]
        self.workers = [
            WorkerHooks(wcls, params.parameters, ctx, state)
            for ctx, state in zip(self.worker_contexts, self.worker_states)
        ]
        from dranspose.hdfrest import FeedbackHub

        self.feedback = FeedbackHub()  # as in the reducer service: context["feedback"].emit(...)
        self.reducer_context: dict[str, object] = {"feedback": self.feedback}
        self.reducer_state = user_state("reducer", "reducer", url=None, parameters_hash=params.hash, build=build)
        self.reducer = ReducerHooks(rcls, params.parameters, self.reducer_context, self.reducer_state)
        # results decoded as the live reducer decodes them (transport.results): same allow-list
        self.result_allow = results.result_allow_list(
            [f"{wcls.__module__}:{wcls.__qualname__}", f"{rcls.__module__}:{rcls.__qualname__}"], pickle_allow
        )
        self.timer = TimerThread(lambda: self.reducer, self.reducer_lock, lambda: self.params.parameters, name="replay-timer")
        self._timer_started = False
        self._next_worker = 0
        # the live tick rule: each worker ticks at most once per interval * nworkers
        self.tickers = [TickClock(w.tick_interval(params.parameters), nworkers) for w in self.workers]

    # ------------------------------------------------------------------ failures
    def fail(self, where: str, event_number: int | None, exc: BaseException) -> None:
        cause = exc.cause if isinstance(exc, HookError) else exc
        tb = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        failure = ReplayFailure(where, event_number, f"{type(cause).__name__}: {cause}", tb)
        self.summary.failures.append(failure)
        log.error("%s\n%s", failure, tb)

    def _input_failed(self, name: str, exc: BaseException) -> None:
        self.fail(f"reading {name}", None, exc)

    # ------------------------------------------------------------------ timer
    def start_timer(self) -> None:
        """Start the reducer's timer thread (when the reducer has a timer). It keeps running
        after the last event and after ``finish``, as live, until :meth:`stop_timer`."""
        if self.reducer.has_timer and not self._timer_started:
            self._timer_started = True
            self.timer.start()

    def stop_timer(self) -> None:
        self.timer.stop()

    def _sync_states(self) -> None:
        """Parameters may change over HTTP during a replay: states show the current hash."""
        digest = self.params.hash
        for state in (*self.worker_states, self.reducer_state):
            if state.parameters_hash != digest:
                state.parameters_hash = digest

    # ------------------------------------------------------------------ events
    def _work(self, index: int, event: EventData) -> None:
        worker = self.workers[index]
        parameters = self.params.parameters
        try:
            payload = worker.process_event(event, parameters, self.tickers[index]())
        except HookError as exc:
            self.fail(exc.hook, event.event_number, exc)
            return
        if payload is None:
            return
        try:  # the live result path: the same encoding, decoder and allow-list as the reducer
            sent = ResultData.model_construct(
                event_number=EventNumber(event.event_number),
                worker=self.worker_names[index],
                parameters_hash=self.params.hash,
                payload=payload,
            )
            result, _mapping = results.decode(results.encode(sent, None), self.result_allow)
        except Exception as exc:
            self.fail("result serialisation", event.event_number, exc)
            return
        try:
            with self.reducer_lock:
                self.reducer.process_result(result, parameters)
        except HookError as exc:
            self.fail(exc.hook, event.event_number, exc)
            return
        self.summary.results += 1

    def process(self, event: EventData) -> None:
        """Hand one event to its worker(s) (all of them for the first event when broadcasting)."""
        if self.summary.events == 0 and self.broadcast_first:
            targets = list(range(len(self.workers)))
        else:
            targets = [self._next_worker]
            self._next_worker = (self._next_worker + 1) % len(self.workers)
        self._sync_states()
        for index in targets:
            self._work(index, event)
        self.summary.events += 1
        self.summary.payload_bytes += sum(_frame_len(f) for s in event.streams.values() for f in s.frames)

    def run(self, sources: list[NamedSource], cancel: threading.Event | None = None) -> ReplaySummary:
        """Process every event (until ``cancel`` is set), then ``finish`` workers and reducer.
        Never raises for errors in user code or input files: they are counted in the summary.
        The reducer's timer keeps running afterwards; :meth:`close` stops it."""
        start = time.perf_counter()
        self.start_timer()
        try:
            for event in merge_events(sources, self._input_failed):
                if cancel is not None and cancel.is_set():
                    self.summary.interrupted = True
                    break
                self.process(event)
                self.summary.elapsed = time.perf_counter() - start
                if self.progress is not None:
                    self.progress(self.summary)
                if self.latency > 0:
                    time.sleep(self.latency)
            self.finish()
        finally:
            self.summary.elapsed = time.perf_counter() - start
        return self.summary

    def finish(self) -> None:
        for worker in self.workers:
            try:
                worker.finish(self.params.parameters)
            except HookError as exc:
                self.fail(exc.hook, None, exc)
        try:
            with self.reducer_lock:
                self.reducer.finish(self.params.parameters)
        except HookError as exc:
            self.fail(exc.hook, None, exc)

    def close(self) -> None:
        """Stop the timer, then call the optional ``close(context)`` hooks (after serving has stopped)."""
        self.stop_timer()
        for worker, ctx in zip(self.workers, self.worker_contexts):
            try:
                worker.close(ctx)
            except HookError as exc:
                self.fail(exc.hook, None, exc)
        try:
            self.reducer.close(self.reducer_context)
        except HookError as exc:
            self.fail(exc.hook, None, exc)
        self.feedback.close()
