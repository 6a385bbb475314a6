"""A framework-free pipeline with dranspose's shape and a chosen CPU cost per event: the floor
for latency under load on this host (used by ``bench_latency_floor.py``).

source (the benchmark's PUSH) -> ingester -> N workers -> reducer, plus a control process,
each its own process, plain pyzmq over TCP on 127.0.0.1, one message per pass and hop as
dranspose sends them, but a pass takes what has come and, unless ``coalescing``, never waits
for more (dranspose's ingester and reducer wait up to 2 ms to fill one):

- ingester: reads what has come (at most 64 frames a pass), stamps each frame's read time,
  parses each frame's JSON header (for the source's send time), spends ``ingester_us``, and at
  the end of the pass sends each worker one message with its frames (event ``k`` goes to worker
  ``k % N``) and the control process the number of events read;
- worker: reads at most 64 messages a pass, spends ``worker_us`` per event, sends the pass's
  results to the reducer as one message;
- reducer: spends ``reducer_us`` per event and records the latency from the source's send and
  from the ingester's read;
- control: stands in for the controller and Redis: ``control_us`` per event the ingester
  read, in passes like a controller's rounds.

No flow control, no assignment, no Redis, no Python objects per event beyond a tuple (but for the
analysis, with ``payload``): what is left is the hops, the batching and the CPU. A cost is spent by a loop calibrated by
:func:`iterations_per_us` in the parent (the same count of iterations in every process, so a
slower core spends more time on it, as it would on real work): by default a loop that stays in
the L1 cache; with ``work="objects"`` a walk through a megabyte of Python objects per process,
whose steps cost more when other processes used the core's caches meanwhile, as a Python data
loop's do. With ``coalescing=True`` the ingester and the reducer wait for more messages before
a pass as dranspose's do (its :class:`~dranspose.core.flow.Coalescer`). With ``payload=True``
every event also runs the benchmark's own analysis, the code a user brings, as dranspose runs it
for ``bench_pipeline.py``: each worker calls ``BenchWorker.process_event`` on the event's header
and frame (with its read time as a ``datetime``) and pickles the result (protocol 5), the reducer
unpickles each and calls ``BenchReducer.process_result``; then only the framework is left out."""

from __future__ import annotations

import json
import multiprocessing as mp
import pickle
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import zmq

from bench.bench_pipeline import image_count, send  # the same paced source as the dranspose pipelines
from bench.machine import WALK_BYTES, ObjectWalk, ns_per_step, spend
from bench.payloads import BenchReducer, BenchWorker
from dranspose.core.flow import Coalescer
from dranspose.transport.sockets import free_tcp_port

STOP = b"STOP"
READ_BURST = 64
RESULT_BURST = 64  # results a coalescing reducer's pass aims at (dranspose's reducer's target)


#: how the pipeline spends its CPU: ``loop``, :func:`spend` (stays in the L1 cache); ``objects``,
#: an :class:`ObjectWalk` (reads through a megabyte of dicts by default: slower when other
#: processes used the core's caches meanwhile, as a Python data loop is)
WORK_KINDS = ("loop", "objects")


def spender(work: str, walk_bytes: int = WALK_BYTES) -> Callable[[int], int]:
    """The function that burns ``steps`` steps of ``work`` (see :data:`WORK_KINDS`; ``objects``
    reads through ``walk_bytes``), made in the calling process."""
    if work not in WORK_KINDS:
        raise ValueError(f"work must be one of {WORK_KINDS}, not {work!r}")
    return spend if work == "loop" else ObjectWalk(walk_bytes)


def iterations_per_us(rounds: int = 15, work: str = "loop", walk_bytes: int = WALK_BYTES) -> float:
    """Steps of ``work`` this core runs per microsecond, warm (best of ``rounds``)."""
    return 1e3 / ns_per_step(spender(work, walk_bytes), rounds, 100_000)


class _PassReader:
    """The messages of one pass, read as the loop takes them (work and reads interleave): at
    most ``READ_BURST``, never waiting for more; the scan's STOP ends the pass and sets
    ``stopped`` (nothing after it is read)."""

    def __init__(self, pull: zmq.Socket) -> None:
        self.pull, self.stopped = pull, False

    def __iter__(self) -> Iterator[list[bytes]]:
        self.stopped = False
        for _ in range(READ_BURST):
            try:
                parts = self.pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if parts[0] == STOP:
                self.stopped = True
                return
            yield parts


class _Stream:
    """What ``BenchWorker.process_event`` reads of a stream: its frames."""

    __slots__ = ("frames",)

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames


class _Event:
    """What ``BenchWorker.process_event`` reads of an event: its streams and read time."""

    __slots__ = ("streams", "created_at")

    def __init__(self, streams: dict[str, _Stream], created_at: datetime) -> None:
        self.streams, self.created_at = streams, created_at


class _Result:
    """What ``BenchReducer.process_result`` reads of a result: its payload and worker."""

    __slots__ = ("payload", "worker")

    def __init__(self, payload: Any, worker: str) -> None:
        self.payload, self.worker = payload, worker


@dataclass(frozen=True)
class Costs:
    """CPU to spend per event in each role, in microseconds of this host's calibrated loop."""

    ingester_us: float = 0.0
    worker_us: float = 0.0
    reducer_us: float = 0.0
    control_us: float = 0.0


def _ingester(in_url: str, worker_urls: list[str], control_url: str, iters: int, spending: tuple[str, int], coalescing: bool,
              payload: bool) -> None:
    burn = spender(*spending)  # (work, walk_bytes)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(in_url)
    outs = []
    for url in worker_urls:
        s = ctx.socket(zmq.PUSH)
        s.bind(url)
        outs.append(s)
    control = ctx.socket(zmq.PUSH)
    control.connect(control_url)
    reader = _PassReader(pull)
    coalesce = Coalescer(target=READ_BURST) if coalescing else None
    last_pass = time.perf_counter()
    k = 0
    while True:
        if coalesce is not None and (pause := coalesce.pause()):
            time.sleep(pause)
        pull.poll()
        stamps: list[list[tuple[float, float]]] = [[] for _ in outs]
        frames: list[list[bytes]] = [[] for _ in outs]
        received = 0
        for parts in reader:
            received += 1
            # stamped as read: a pass reads what arrives while it works, so its wake-up time
            # could precede a frame's send
            read_at = time.time()
            if len(parts) < 2:  # the series' start and end messages
                continue
            sent_at = json.loads(parts[0]).get("t", read_at)
            burn(iters)
            w = k % len(outs)
            k += 1
            stamps[w].append((sent_at, read_at))
            if payload:  # the worker runs the analysis on the header and the frame
                frames[w].append(parts[0])
            frames[w].append(parts[1])
        if coalesce is not None:
            started, last_pass = last_pass, time.perf_counter()
            coalesce.observe(received, last_pass - started)
        n = 0
        for w, s in enumerate(outs):
            if stamps[w]:
                stamp = json.dumps(stamps[w]).encode()
                s.send_multipart([stamp, *frames[w]] if payload else [stamp, b"".join(frames[w])])
                n += len(stamps[w])
        if n:
            control.send(b"%d" % n)
        if reader.stopped:
            for s in outs:
                s.send(STOP)


def _worker(in_url: str, out_url: str, iters: int, spending: tuple[str, int], payload: bool) -> None:
    burn = spender(*spending)  # (work, walk_bytes)
    analysis = BenchWorker()
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.connect(in_url)
    push.connect(out_url)
    reader = _PassReader(pull)
    while True:
        pull.poll()
        results: list[Any] = []
        pickles: list[bytes] = []
        for parts in reader:
            for k, stamp in enumerate(json.loads(parts[0])):
                burn(iters)
                results.append(stamp)
                if payload:  # parts: the stamps, then header and frame of each event
                    event = _Event({"det": _Stream(parts[1 + 2 * k:3 + 2 * k])}, datetime.fromtimestamp(stamp[1], timezone.utc))
                    pickles.append(pickle.dumps(analysis.process_event(event), protocol=5))
        if results:
            push.send_multipart([json.dumps(results).encode(), *pickles])
        if reader.stopped:
            push.send(STOP)


def _reducer(url: str, nworkers: int, iters: int, out: Any, spending: tuple[str, int], coalescing: bool, payload: bool) -> None:
    burn = spender(*spending)  # (work, walk_bytes)
    analysis = BenchReducer()
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(url)
    out.put("ready")
    latency: list[float] = []
    ingest: list[float] = []
    stops = 0
    coalesce = Coalescer(target=RESULT_BURST) if coalescing else None
    last_pass = time.perf_counter()
    while True:
        if coalesce is not None and (pause := coalesce.pause()):
            time.sleep(pause)
        pull.poll()
        received = 0
        while True:  # what has come
            try:
                msg, *pickles = pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if msg == STOP:
                stops += 1
                if stops == nworkers:
                    out.put((latency, ingest, analysis.results))
                    latency, ingest, stops = [], [], 0
                    analysis = BenchReducer()  # what it kept is per scan
                continue
            for k, (sent_at, read_at) in enumerate(json.loads(msg)):
                received += 1
                burn(iters)
                if payload:  # one pickled result per event, after the stamps
                    analysis.process_result(_Result(pickle.loads(pickles[k]), "w"))
                now = time.time()
                latency.append(now - sent_at)
                ingest.append(now - read_at)
        if coalesce is not None:
            started, last_pass = last_pass, time.perf_counter()
            coalesce.observe(received, last_pass - started)


def _control(url: str, iters_per_event: float, spending: tuple[str, int]) -> None:
    burn = spender(*spending)  # (work, walk_bytes)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(url)
    while True:
        pull.poll()
        n = 0
        while True:
            try:
                n += int(pull.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        burn(int(n * iters_per_event))


class ShapedPipeline:
    """The processes above, started once and reused for every scan (like a CLI pipeline)."""

    def __init__(self, costs: Costs, nworkers: int, iters_per_us: float, work: str = "loop", coalescing: bool = False,
                 walk_bytes: int = WALK_BYTES, payload: bool = False) -> None:
        """``iters_per_us``: :func:`iterations_per_us` of the same ``work`` (and ``walk_bytes``). ``coalescing``: the
        ingester and the reducer wait for more messages as dranspose's do (its
        :class:`~dranspose.core.flow.Coalescer`, same targets) instead of taking what has come.
        ``payload``: every event also runs the benchmark's analysis (see the module's docstring)."""
        self.costs, self.nworkers = costs, nworkers
        spending = (work, walk_bytes)  # what each process makes its spender from (spender(*spending))
        ctx = zmq.Context.instance()
        self.src = ctx.socket(zmq.PUSH)
        self.src.setsockopt(zmq.SNDHWM, 1_000_000)
        in_port = self.src.bind_to_random_port("tcp://127.0.0.1")
        worker_urls = [f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(nworkers)]
        reducer_url, control_url = f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"
        self.out: Any = mp.Queue()

        def it(us: float) -> int:
            return int(us * iters_per_us)

        self.roles: dict[str, list[mp.Process]] = {
            "reducer": [mp.Process(target=_reducer, args=(reducer_url, nworkers, it(costs.reducer_us), self.out, spending, coalescing,
                                                          payload))],
            "control": [mp.Process(target=_control, args=(control_url, costs.control_us * iters_per_us, spending))],
            "workers": [mp.Process(target=_worker, args=(u, reducer_url, it(costs.worker_us), spending, payload)) for u in worker_urls],
            "ingester": [mp.Process(target=_ingester, args=(f"tcp://127.0.0.1:{in_port}", worker_urls, control_url,
                                                            it(costs.ingester_us), spending, coalescing, payload))],
        }
        for procs in self.roles.values():
            for p in procs:
                p.daemon = True
                p.start()
        if self.out.get(timeout=30) != "ready":
            raise RuntimeError("shaped pipeline: the reducer did not start")
        time.sleep(0.5)  # every hop connected

    def pids(self) -> dict[str, tuple[int, ...]]:
        return {role: tuple(p.pid for p in procs if p.pid is not None) for role, procs in self.roles.items()}

    def scan(self, msgs: list[list[bytes]], rate: float | None) -> dict[str, Any]:
        """Send ``msgs`` (paced at ``rate``) then STOP; returns ``latency`` and ``ingest_latency``
        (seconds, per event), ``elapsed`` (first send -> the reducer's last result) and
        ``analysed`` (results the reducer's analysis took: 0 without ``payload``)."""
        t0 = time.time()
        send(self.src, msgs, rate)
        self.src.send(STOP)
        latency, ingest, analysed = self.out.get(timeout=max(120.0, 10 * len(msgs) / (rate or 500)))
        n = image_count(msgs)
        if len(latency) != n:
            raise RuntimeError(f"shaped pipeline: {len(latency)} results for {n} images")
        return {"latency": latency, "ingest_latency": ingest, "elapsed": time.time() - t0, "analysed": analysed}

    def close(self) -> None:
        for procs in self.roles.values():
            for p in procs:
                p.terminate()
                p.join(10)
        self.src.close(0)
