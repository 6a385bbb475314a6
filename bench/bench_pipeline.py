"""End-to-end pipeline benchmark as a facility deploys it, against a raw pyzmq relay and (when
installed) dranspose 0.2.0, in the same run, interleaved (relay, ours, 0.2.0, relay, ...).

Layout of both dranspose versions: every component its own process started through its own
CLI (``dranspose controller|ingester|worker|reducer``), default settings (no ``--capacity``),
REDUCER_URL given to every component, a private redis-server per pipeline, and the payload of
``bench/payloads.py`` (the worker parses each image's STINS header and returns a dict). The
components run in this process's session, each in a process group of its own, as
``dranspose combined`` starts them (``--own-sessions``: each in a session of its own, as when
started from separate terminals; where the kernel schedules by session, "autogroup", each is
then a scheduling group of its own: docs/performance.md, *Scheduling groups*). The
source is this process (PUSH). Done = the reducer's ``finish`` ran (it stamps the time).
Relay peer: source -> relay process -> N sink processes (PUSH/PULL, ``copy=False``): the same
hops and data processes as source -> ingester -> N workers, with no framework.

    python bench/bench_pipeline.py                  # full run (several minutes)
    python bench/bench_pipeline.py --quick          # a smoke run, about a minute
    python bench/bench_pipeline.py --peer-venv ~/venvs/dranspose020   # or DRANSPOSE020_VENV
    python bench/bench_pipeline.py --latency-at 50 --against /tmp/old/src --pairs 8   # A/B of two commits
    python bench/bench_pipeline.py --latency-at 20000 --own-sessions   # components in sessions of their own

The 0.2.0 venv: ``python -m venv V && V/bin/pip install dranspose==0.2.0 "cbor2<5.8"``.

Prints events/s for 2 kB frames with 2 and 4 workers and MB/s for 2 MB frames (ratios: median
of per-pair ratios), and the p50/p99 latency to the reducer's ``process_result`` at 50 Hz (next
to a chain of three raw ZeroMQ hops, source -> relay -> relay -> sink: the floor on this host)
and at 80% of the maximum 2 kB rate measured with 2 workers (three 2 s scans, each and pooled;
then three more, each at 80% of one 2 kB burst taken just before it, as the host's speed moves):
from the source's send, and from the ingester's read of the frame (``EventData.created_at``);
per scan also the p50 of each stage and each stage's mean over the slowest 1% of events, and
how fast the host ran Python around it (``bench.machine.host_speed``, before and after the scan)
against its speed while the maximum was taken: on a shared virtual machine it moves by half
within seconds, and a rate that was 80% of the maximum is more than that when it slows; with
``--latency-at``, per scan, how long the ingester held frames for assignments and the share of
their runnable time the data loops waited for a core (what the components publish), the CPU
the pipeline's processes used while the frames went through (from ``/proc``: components and
redis-server, not the source), and the episodes of results later than 10 ms from the
ingester's read (how many, their peaks, the stages at the peaks) and the host's speed. Beside
each paced scan also its CPU per event up to the reducer's finish and how busy the whole
machine was while its frames came; in a full run, beside each 80% scan, that CPU per event
against what the pipeline spent per event in the bursts its maximum came from.
"""

from __future__ import annotations

import argparse
import json
import os
import multiprocessing as mp
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # bench.machine

from dranspose.local.redis_server import RedisServer  # noqa: E402
from dranspose.services import parent_watch  # noqa: E402
from dranspose.services.loop_time import CoreTime  # noqa: E402
from dranspose.transport.sockets import free_tcp_port  # noqa: E402

from bench.machine import MachineSample, host_speed, machine_sample, speed_note  # noqa: E402
from bench.trees import require_built  # noqa: E402

PEER_ENV = "DRANSPOSE020_VENV"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stins_messages(n: int, nbytes: int) -> list[list[bytes]]:
    """A STINS series of ``n`` uint8 frames of ``nbytes`` (payload shared, headers per frame)."""
    blob = np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8).tobytes()
    msgs = [[json.dumps({"htype": "header", "msg_number": 0, "filename": ""}).encode()]]
    for i in range(n):
        meta = {"htype": "image", "msg_number": i + 1, "frame": i, "shape": [nbytes], "type": "uint8", "compression": "none"}
        msgs.append([json.dumps(meta).encode(), blob])
    msgs.append([json.dumps({"htype": "series_end", "msg_number": n + 1}).encode()])
    return msgs


def image_count(msgs: list[list[bytes]]) -> int:
    """The images of a series (a header and a payload each; the series' header and end are one
    part)."""
    return sum(1 for m in msgs if len(m) >= 2)


# shortest sleep of the paced source: frames due within it go out together. A sleep per
# frame (a timer, a wake-up, a context switch every 42 us at 24 kHz) cost this process more
# CPU than the pipeline's ingester, on the same two cores as the pipeline under test.
MIN_SLEEP_S = 0.0005


def send(sock: zmq.Socket, msgs: list[list[bytes]], rate: float | None) -> None:
    """Send ``msgs``, paced at ``rate`` Hz when given (then every image carries a send time
    ``"t"``, for the latency; frames due within ``MIN_SLEEP_S`` go out together and share a
    stamp taken before the first of them: at most ``MIN_SLEEP_S`` early, never late, so no
    latency is understated). Unpaced (throughput), the messages go out as built, as the
    relay's source sends them.

    The source stands in for a detector on another host, so it spends as little of the two
    shared cores as it can: headers are laid out before the clock starts, stamping one is a
    bytes join (re-encoding its JSON cost ~6 us per frame), and the small parts of a paced
    image are copied into libzmq (cheaper than pyzmq's zero-copy bookkeeping below 64 kB)."""
    if not rate:
        for parts in msgs:
            sock.send_multipart(parts, copy=False)
        return
    # an image header's JSON object without its closing brace; the stamp completes it
    open_heads = [p[0].rstrip()[:-1] + b', "t": ' if len(p) == 2 else b"" for p in msgs]
    period = 1.0 / rate
    more = zmq.SNDMORE
    t0 = time.perf_counter()
    stamp, stamped = b"", -1.0
    for k, parts in enumerate(msgs):
        now = time.perf_counter()
        delay = t0 + k * period - now
        if delay >= MIN_SLEEP_S:
            time.sleep(delay)
            now = time.perf_counter()
        if now - stamped >= MIN_SLEEP_S:
            stamp, stamped = b"%.6f}" % time.time(), now
        if len(parts) == 2:
            sock.send(open_heads[k] + stamp, more)
            sock.send(parts[1], copy=len(parts[1]) < 65536)
        else:
            sock.send_multipart(parts)


# after the source's last frame, the wait before the pipeline's CPU is read again (its last
# events on their way; the reducer's ``finish`` comes later and is not counted)
SCAN_TAIL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_now() -> list[MachineSample]:
    """The machine's CPU time now, or nothing where ``/proc/stat`` cannot be read."""
    try:
        return [machine_sample()]
    except OSError:
        return []


def machine_busy(before: MachineSample, after: MachineSample) -> float | None:
    """Share of all cores' time not idle between two readings (None: no time passed)."""
    total, idle = after[1] - before[1], after[2] - before[2]
    return 1.0 - idle / total if total > 0 else None


def process_cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` (all their threads), from
    ``/proc/<pid>/stat``; a process that is gone counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _CLOCK_TICKS


class CliPipeline:
    """controller, reducer, one STINS ingester and ``nworkers`` workers, each started by the
    CLI of one dranspose version, with a private redis-server; reused for every scan. Create it
    from the main thread: this project's components and the redis-server end with this process
    even when it is killed (``services/parent_watch.py``; 0.2.0's components do not know it)."""

    def __init__(self, label: str, dranspose_cmd: list[str], env: dict[str, str], nworkers: int,
                 own_sessions: bool = False) -> None:
        """``own_sessions``: each component in a session of its own (else in this process's
        session, each in a process group of its own; either way one signal to the group of a
        component's pid reaches it and what it started)."""
        self.label, self.nworkers, self.own_sessions = label, nworkers, own_sessions
        self.redis = RedisServer(end_with_this_process=True).start()
        self.out = tempfile.mkdtemp(prefix=f"bench-{label}-")
        self.env = dict(env, REDIS_URL=self.redis.url, REDUCER_URL=f"tcp://127.0.0.1:{free_tcp_port()}",
                        BENCH_OUT=self.out, LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
                        **{parent_watch.ENV: str(os.getpid())})  # a benchmark killed by a timeout leaves nothing running
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = open(os.path.join(self.out, "components.log"), "wb")
        self.src = zmq.Context.instance().socket(zmq.PUSH)
        self.src.setsockopt(zmq.SNDHWM, 1_000_000)
        src_port = self.src.bind_to_random_port("tcp://127.0.0.1")
        api_port = free_tcp_port() if label != "0.2.0" else 5000
        if label == "0.2.0" and not port_free(5000):  # its controller CLI always listens on 5000
            api_port = free_tcp_port()
            self._spawn([env["PEER_PYTHON"], "-c", "import sys, uvicorn; from dranspose.controller import app; "
                         f"uvicorn.run(app, host='127.0.0.1', port={api_port}, log_level='warning')"])
        elif label == "0.2.0":
            self._spawn([*dranspose_cmd, "controller", "--host", "127.0.0.1"])
        else:
            self._spawn([*dranspose_cmd, "controller", "--host", "127.0.0.1", "--port", str(api_port)])
        self.api = f"http://127.0.0.1:{api_port}"
        self._spawn([*dranspose_cmd, "reducer", "-c", "bench.payloads:BenchReducer", "--host", "127.0.0.1", "-p", str(free_tcp_port())])
        self._spawn([*dranspose_cmd, "ingester", "-c", "ZmqPullSingleIngester", "-u", f"tcp://127.0.0.1:{src_port}", "-n", "det"],
                    INGESTER_URL=f"tcp://127.0.0.1:{free_tcp_port()}")
        for i in range(nworkers):
            self._spawn([*dranspose_cmd, "worker", "-n", f"w{i}", "-c", "bench.payloads:BenchWorker"])
        self.client = httpx.Client(base_url=self.api, timeout=30)
        self._wait_ready()

    def _spawn(self, cmd: list[str], **extra: str) -> None:
        env = dict(self.env, **extra)
        group: dict[str, Any] = {"start_new_session": True} if self.own_sessions else {"process_group": 0}
        self.procs.append(subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                           **group))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            dead = [p.args for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{self.label}: a component exited: {dead}; see {self.out}/components.log")
            try:
                cfg = self.client.get("/api/v1/config").json()
                ing = cfg.get("ingesters") or []
                workers = cfg.get("workers", [])
                if cfg.get("reducer") and len(workers) == self.nworkers and ing:
                    # both versions: the ingester has seen every worker and every worker lists the
                    # ingester (0.2.0's workers sometimes never found it: its scan then hung)
                    seen = ing[0].get("workers", ing[0].get("connected_workers", ()))
                    if len(seen) == self.nworkers and all(w.get("ingesters") for w in workers):
                        return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.label}: pipeline did not start; see {self.out}/components.log")

    def scan(self, msgs: list[list[bytes]], rate: float | None = None) -> dict[str, Any]:
        """Run one scan; returns the reducer's summary plus ``elapsed`` (first send -> finish)."""
        n = image_count(msgs)
        for f in os.listdir(self.out):
            if f.endswith(".json"):
                os.unlink(os.path.join(self.out, f))
        mapping = {"det": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}
        for _ in range(40):  # a controller that has not seen every component yet says 400
            try:
                resp = self.client.post("/api/v1/mapping", json=mapping)
            except httpx.HTTPError as exc:
                raise RuntimeError(f"{self.label}: posting the mapping failed: {exc!r}\n{self.log_tail()}") from exc
            if resp.status_code != 400:
                break
            time.sleep(0.5)
        if resp.status_code >= 300:
            raise RuntimeError(f"{self.label}: mapping refused: {resp.status_code} {resp.text[:300]}")
        time.sleep(0.5)  # let every component switch to the new mapping
        t0 = time.time()
        cpu: list[tuple[float, float]] = []  # (CPU seconds, wall clock) at the first frame and after the last
        machine: list[MachineSample] = []  # the whole machine's CPU time at the same two moments

        def send_and_count() -> None:  # the pipeline's CPU while the frames go through it
            cpu.append((self.cpu_seconds(), time.perf_counter()))
            machine.extend(_machine_now())
            send(self.src, msgs, rate)
            time.sleep(SCAN_TAIL_S)
            cpu.append((self.cpu_seconds(), time.perf_counter()))
            machine.extend(_machine_now())

        sender = threading.Thread(target=send_and_count, daemon=True)  # a failed scan must not keep the process
        sender.start()
        deadline = time.monotonic() + max(120.0, 10 * n / (rate or 500))
        while True:
            files = [f for f in os.listdir(self.out) if f.endswith(".json")]
            if files:
                cpu_at_finish = self.cpu_seconds()
                with open(os.path.join(self.out, files[0])) as fh:
                    summary = json.load(fh)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: scan did not finish: {self.client.get('/api/v1/progress').json()}\n{self.log_tail()}")
            time.sleep(0.02)
        sender.join()
        if summary["results"] != n:
            raise RuntimeError(f"{self.label}: {summary['results']} results for {n} images")
        summary["elapsed"] = summary["finished"] - t0
        if len(cpu) == 2:
            summary["cpu_s"], summary["cpu_wall_s"] = cpu[1][0] - cpu[0][0], cpu[1][1] - cpu[0][1]
        if cpu:  # the first frame's reading is taken before any result can come
            summary["cpu_to_finish_s"] = cpu_at_finish - cpu[0][0]
        if len(machine) == 2:
            summary["machine_busy"] = machine_busy(machine[0], machine[1])
        return summary

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, every thread) used so far by this pipeline's processes:
        its components and its redis-server; not the benchmark's source."""
        procs = [*self.procs, *([self.redis.proc] if self.redis.proc is not None else [])]
        return process_cpu_s([p.pid for p in procs])

    def _status(self, key: str) -> Any:
        """``key`` of the controller's ``/api/v1/status`` (None when it does not answer)."""
        try:
            return self.client.get("/api/v1/status").json().get(key)
        except (httpx.HTTPError, ValueError):
            return None

    def assignment_wait_s(self) -> float | None:
        """Seconds the ingester held frames it had read with no assignment for them, summed
        over its streams, cumulative, as last published (one heartbeat behind); None where the
        version does not count it."""
        ingesters = self._status("ingesters") or {}
        values = [v.get("assignment_wait_s") for streams in ingesters.values() if isinstance(streams, dict)
                  for v in streams.values() if isinstance(v, dict)]
        numbers = [float(x) for x in values if isinstance(x, (int, float))]
        return sum(numbers) if numbers else None

    def worker_assignment_waits(self) -> tuple[int, float] | None:
        """Events whose frames reached a worker before their assignment, and the seconds they
        waited for it, summed over the workers, cumulative, as last published; None where the
        version does not count them."""
        workers = self._status("workers") or {}
        counted = [w for w in workers.values() if isinstance(w, dict) and isinstance(w.get("assignment_waits"), int)]
        if not counted:
            return None
        return sum(w["assignment_waits"] for w in counted), sum(float(w.get("assignment_wait_s") or 0.0) for w in counted)

    def data_loop_times(self) -> dict[str, tuple[float, float]] | None:
        """Each component's data loop (``kind:name``): seconds on a core and seconds waiting
        for one, cumulative, as last published; None where the version does not publish them."""
        loops = self._status("data_loops")
        if not isinstance(loops, dict):
            return None
        spent = {str(key): CoreTime.from_state(v) for key, v in loops.items()}
        out = {key: (t.on_core_s, t.waiting_for_core_s) for key, t in spent.items() if t is not None}
        return out or None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the components wrote (their log goes away with :meth:`close`)."""
        self.log.flush()
        with open(os.path.join(self.out, "components.log"), "rb") as fh:
            tail = fh.read().decode(errors="replace").splitlines()[-lines:]
        return f"last {len(tail)} lines of the {self.label} components' log:\n" + "\n".join(tail)

    def close(self) -> None:
        self.client.close()
        self.src.close(0)
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.log.close()
        self.redis.stop()
        shutil.rmtree(self.out, ignore_errors=True)


def ours(nworkers: int, src: str | None = None, label: str = "ours", own_sessions: bool = False) -> CliPipeline:
    """This project's pipeline; ``src``: another tree's ``src`` folder to run instead (e.g. a
    checkout of an earlier commit, its ``_fastpath`` built in place: checked)."""
    if src is not None:
        require_built(src)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src or str(ROOT / "src"), str(ROOT)]))
    return CliPipeline(label, [sys.executable, "-m", "dranspose.cli"], env, nworkers, own_sessions)


def peer(venv: str, nworkers: int, own_sessions: bool = False) -> CliPipeline:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRANSPOSE", "PYTHON"))}
    env.update(PYTHONPATH=str(ROOT), PEER_PYTHON=os.path.join(venv, "bin", "python"))  # bench.payloads, not our dranspose
    return CliPipeline("0.2.0", [os.path.join(venv, "bin", "dranspose")], env, nworkers, own_sessions)


# ---------------------------------------------------------------- the raw relay peer


def _relay(in_url: str, out_url: str, nsinks: int) -> None:
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.connect(in_url)
    push.bind(out_url)
    while True:
        parts = pull.recv_multipart(copy=False)
        if len(parts) == 1 and parts[0].bytes == b"STOP":
            for _ in range(nsinks):  # PUSH round-robin: one STOP per sink
                push.send(b"STOP")
            # PUSH skips a sink whose pipe is full, so one sink may have got two STOPs and
            # another none: repeat (a sink leaves at its first; relay_run ends this process)
            while True:
                time.sleep(0.05)
                push.send(b"STOP")
        push.send_multipart(parts, copy=False)


def _sink(url: str, done: Any) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(url)
    done.put("ready")
    count = 0
    while True:
        parts = pull.recv_multipart(copy=False)
        if len(parts) == 1 and parts[0].bytes == b"STOP":
            break
        count += 1
    done.put((count, time.perf_counter()))


def relay_run(msgs: list[list[bytes]], nsinks: int) -> float:
    """Seconds to push ``msgs`` through source -> relay -> ``nsinks`` sinks."""
    ctx = zmq.Context.instance()
    src = ctx.socket(zmq.PUSH)
    in_port = src.bind_to_random_port("tcp://127.0.0.1")
    out_url = f"tcp://127.0.0.1:{free_tcp_port()}"
    q: Any = mp.Queue()
    relay = mp.Process(target=_relay, args=(f"tcp://127.0.0.1:{in_port}", out_url, nsinks))
    relay.start()
    sinks = [mp.Process(target=_sink, args=(out_url, q)) for _ in range(nsinks)]
    for p in sinks:
        p.start()
    for _ in sinks:
        assert q.get(timeout=30) == "ready"
    time.sleep(0.5)  # every sink connected: round-robin covers them all
    t0 = time.perf_counter()
    for parts in msgs:
        src.send_multipart(parts, copy=False)
    src.send(b"STOP")
    counts, end = 0, t0
    for _ in sinks:
        c, t = q.get(timeout=300)
        counts, end = counts + c, max(end, t)
    relay.terminate()
    relay.join(10)
    for p in sinks:
        p.join(10)
    src.close(0)
    if counts != len(msgs):
        raise RuntimeError(f"relay delivered {counts} of {len(msgs)} messages")
    return end - t0


def _latency_sink(url: str, done: Any) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(url)
    done.put("ready")
    latency: list[float] = []
    while True:
        parts = pull.recv_multipart()
        now = time.time()
        if len(parts) == 1 and parts[0] == b"STOP":
            break
        t = json.loads(parts[0]).get("t")  # what the benchmark's worker payload reads too
        if t is not None:
            latency.append(now - t)
    done.put(latency)


def relay_latency(msgs: list[list[bytes]], rate: float) -> list[float]:
    """Seconds source -> sink of each paced image through a chain of three raw ZeroMQ hops
    (source -> relay -> relay -> sink: as many hops as source -> ingester -> worker -> reducer),
    the floor of the pipeline's latency on this host."""
    ctx = zmq.Context.instance()
    src = ctx.socket(zmq.PUSH)
    in_port = src.bind_to_random_port("tcp://127.0.0.1")
    mid_url, out_url = f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"
    q: Any = mp.Queue()
    relays = [mp.Process(target=_relay, args=(f"tcp://127.0.0.1:{in_port}", mid_url, 1)),
              mp.Process(target=_relay, args=(mid_url, out_url, 1))]
    sink = mp.Process(target=_latency_sink, args=(out_url, q))
    for p in (*relays, sink):
        p.start()
    try:
        assert q.get(timeout=30) == "ready"
        time.sleep(0.5)  # every hop connected
        send(src, msgs, rate)
        src.send(b"STOP")
        latency: list[float] = q.get(timeout=300)
    finally:
        for p in (*relays, sink):
            p.terminate()
            p.join(10)
        src.close(0)
    return latency


# ---------------------------------------------------------------- report


def progress(message: str) -> None:
    """One line on stderr as a full run goes (its table comes at the end, on stdout)."""
    print(f"[bench_pipeline {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def throughput(label: str, msgs: list[list[bytes]], nbytes: int, pipes: dict[str, CliPipeline], nsinks: int,
               pairs: int) -> dict[str, Any]:
    """Interleaved rounds relay, ours, 0.2.0; medians and median per-round ratios, and
    (``ours_us_per_event``) the median CPU per event our pipeline spent in its rounds."""
    n = image_count(msgs)
    times: dict[str, list[float]] = {"relay": []}
    ours_us: list[float] = []  # our pipeline's CPU per event, first frame -> finish, per round
    for name in pipes:
        times[name] = []
    for k in range(pairs):
        times["relay"].append(relay_run(msgs, nsinks))
        for name, p in pipes.items():
            summary = p.scan(msgs)
            times[name].append(summary["elapsed"])
            if name == "ours" and "cpu_to_finish_s" in summary:
                ours_us.append(summary["cpu_to_finish_s"] / n * 1e6)
        rates = (f"{n * nbytes / ts[-1] / 1e6:,.0f} MB/s" if nbytes >= 1 << 20 else f"{n / ts[-1]:,.0f} events/s" for ts in times.values())
        progress(f"{label}, round {k + 1} of {pairs}: " + ", ".join(f"{name} {r}" for name, r in zip(times, rates)))
    row: dict[str, Any] = {"label": label, "n": n, "nbytes": nbytes}
    if ours_us:
        row["ours_us_per_event"] = statistics.median(ours_us)
    for name, ts in times.items():
        row[name] = n / statistics.median(ts)
    row["ours/relay"] = statistics.median(r / o for o, r in zip(times["ours"], times["relay"]))
    if "0.2.0" in times:
        row["ours/0.2.0"] = statistics.median(p / o for o, p in zip(times["ours"], times["0.2.0"]))
    return row


def fmt_rate(row: dict[str, Any], name: str) -> str:
    if name not in row:
        return "-"
    if row["nbytes"] >= 1 << 20:
        return f"{row[name] * row['nbytes'] / 1e6:,.0f} MB/s"
    return f"{row[name]:,.0f} ev/s"


def percentiles(seconds: list[float]) -> str:
    """``p50 .. ms  p99 .. ms`` of latencies given in seconds."""
    ms = np.array(seconds) * 1e3
    return f"p50 {np.percentile(ms, 50):7.2f} ms  p99 {np.percentile(ms, 99):7.2f} ms"


def stages(split: list[list[float]]) -> str:
    """p50 of each stage: source -> ingester read -> process_event -> process_result (or
    source -> process_event -> process_result where the events carry no read time), then
    where the slowest 1% spent their time: the mean of each stage over the events whose
    latency from the ingester's read (from the source's send without a read time) is at or
    above its p99."""
    rows = [r for r in split if len(r) == 3] or [r for r in split if len(r) == 2]
    if not rows:
        return ""
    ms = np.array(rows) * 1e3
    p50 = np.percentile(ms, 50, axis=0)
    names = ("source->ingester", "->worker", "->reducer") if len(rows[0]) == 3 else ("source->worker", "->reducer")
    after_read = ms[:, 1:].sum(axis=1) if ms.shape[1] == 3 else ms.sum(axis=1)
    slowest = ms[after_read >= np.percentile(after_read, 99)].mean(axis=0)
    return ("  (p50 " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, p50)) + " ms; slowest 1%: "
            + ", ".join(f"{n} {v:.1f}" for n, v in zip(names, slowest)) + " ms)")


def episodes(split: list[list[float]], threshold_s: float = 0.010, join: int = 50) -> str:
    """``; N episodes later than 10 ms, ...``: results (in the order the reducer processed them) later than
    ``threshold_s`` from the ingester's read, grouped into episodes (late results at most
    ``join`` results apart belong to one); per scan how many, how late at their peaks
    (median, worst), how many results they held (median), and at each peak the stages
    after the read (medians over the episodes). Empty without read times (older trees,
    0.2.0)."""
    rows = [r for r in split if len(r) == 3]
    if not rows:
        return ""
    late = [i for i, r in enumerate(rows) if r[1] + r[2] > threshold_s]
    if not late:
        return f"; no result later than {threshold_s * 1e3:.0f} ms"
    spans: list[list[int]] = []
    for i in late:
        if spans and i - spans[-1][1] <= join:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    peaks = [max(range(a, b + 1), key=lambda i: rows[i][1] + rows[i][2]) for a, b in spans]
    peak_ms = [(rows[i][1] + rows[i][2]) * 1e3 for i in peaks]
    return (f"; {len(spans)} episodes later than {threshold_s * 1e3:.0f} ms, peaks {statistics.median(peak_ms):.1f} ms "
            f"(worst {max(peak_ms):.1f}), {statistics.median(b - a + 1 for a, b in spans):.0f} results each; "
            f"at the peaks ->worker {statistics.median(rows[i][1] for i in peaks) * 1e3:.1f}, "
            f"->reducer {statistics.median(rows[i][2] for i in peaks) * 1e3:.1f} ms")


def cpu_line(summary: dict[str, Any]) -> str:
    """``; the pipeline's processes used ..% of a core, .. µs per event`` over the scan (from
    the source's first frame until ``SCAN_TAIL_S`` after its last; the source excluded). A
    scan that fell behind still has a backlog when the window ends: its share of a core is
    what the pipeline used while the frames came, its µs per event a lower bound."""
    cpu, wall, n = summary.get("cpu_s"), summary.get("cpu_wall_s"), summary.get("results")
    if cpu is None or not wall or not n:
        return ""
    return f"; the pipeline's processes used {cpu / wall:.0%} of a core, {cpu / n * 1e6:.0f} µs per event"


def load_line(summary: dict[str, Any], us_at_max: float | None = None) -> str:
    """``; 61 µs per event to the finish, 1.32x the maximum's 46; the machine 97% busy``: the
    pipeline's CPU per event from the first frame to the reducer's finish (a scan's backlog
    included), against what it spent per event in the burst its maximum was taken from, and
    the share of both cores (every process, the source's too) not idle while the frames
    came. Paced, every process wakes for fewer events at a time than in a burst and spends
    more per event: 80% of the maximum's rate can fill the machine."""
    out = ""
    spent, n = summary.get("cpu_to_finish_s"), summary.get("results")
    if spent is not None and n:
        us = spent / n * 1e6
        out = f"; {us:.0f} µs per event to the finish"
        if us_at_max:
            out += f", {us / us_at_max:.2f}x the maximum's {us_at_max:.0f}"
    busy = summary.get("machine_busy")
    if busy is not None:
        out += f"; the machine {busy:.0%} busy"
    return out


HEARTBEAT_LAG_S = 0.6  # components publish their state every 0.5 s (the default heartbeat)


def held_line(pipe: CliPipeline, held: dict[str, float | None], name: str) -> str:
    """``; the ingester held frames for assignments .. ms``: what the ingester's counter grew
    by since ``held[name]`` (then updated), read a heartbeat after the scan; empty where the
    version does not count it."""
    before = held.get(name)
    if before is None:
        return ""
    time.sleep(HEARTBEAT_LAG_S)
    now = pipe.assignment_wait_s()
    if now is None:
        return ""
    held[name] = now
    return f"; the ingester held frames for assignments {(now - before) * 1e3:.0f} ms"


def worker_wait_line(pipe: CliPipeline, seen: dict[str, tuple[int, float] | None], name: str) -> str:
    """``; frames before their assignment at the workers: N events, X ms in all`` since
    ``seen[name]`` (then updated; read after :func:`held_line` waited for a heartbeat): the
    other side of the ingester's holding, events the worker could not start for want of
    their assignment. Empty where the version does not count them."""
    before, now = seen.get(name), pipe.worker_assignment_waits()
    seen[name] = now
    if before is None or now is None:
        return ""
    return f"; frames before their assignment at the workers: {now[0] - before[0]} events, {(now[1] - before[1]) * 1e3:.0f} ms in all"


def waiting_line(pipe: CliPipeline, seen: dict[str, dict[str, tuple[float, float]] | None], name: str) -> str:
    """``; data loops waiting for a core: ingester ..%, worker ..%, reducer ..% of their
    runnable time`` over what the components published since ``seen[name]`` (then updated;
    read after :func:`held_line` waited for a heartbeat); empty where the version does not
    publish it."""
    before, now = seen.get(name), pipe.data_loop_times()
    seen[name] = now
    if not before or not now:
        return ""
    shares = []
    for kind in ("ingester", "worker", "reducer"):
        on = waiting = 0.0
        for key, (o, w) in now.items():
            if key.split(":", 1)[0] == kind and key in before:
                on += o - before[key][0]
                waiting += w - before[key][1]
        if on + waiting > 0:
            shares.append(f"{kind} {waiting / (on + waiting):.0%}")
    return "; data loops waiting for a core: " + ", ".join(shares) + " of their runnable time" if shares else ""


def latency_only(rates: list[float], against: str | None = None, pairs: int = 1, own_sessions: bool = False) -> None:
    """p50/p99 source -> reducer and ingester -> reducer at each rate, 2 workers, 3 s of frames
    per scan. With ``against`` (another tree's ``src``) both pipelines run side by side and
    their scans alternate (``pairs`` per rate, the first of each pair switching), and the
    medians of the per-pair ratios this / against are printed (p50 both ways, p99 from the
    ingester's read). (Trees older than ``created_at`` as the read time, before 2026-12-05,
    stamp it when the ingester sends: their ingester -> reducer figure starts later; compare
    source -> reducer with them.) ``own_sessions``: see :class:`CliPipeline`."""
    pipes = {"this": ours(2, own_sessions=own_sessions)}
    if against:
        pipes["against"] = ours(2, against, "against", own_sessions)
    try:
        for p in pipes.values():
            p.scan(stins_messages(2000, 2048))  # warm-up
        time.sleep(HEARTBEAT_LAG_S)
        held = {name: p.assignment_wait_s() for name, p in pipes.items()}
        early = {name: p.worker_assignment_waits() for name, p in pipes.items()}
        loops = {name: p.data_loop_times() for name, p in pipes.items()}
        print(f"{'':22}{'source -> reducer':^32}{'ingester -> reducer':^32}")
        for rate in rates:
            msgs = stins_messages(max(100, int(3 * rate)), 2048)
            p50: dict[str, list[tuple[float, float]]] = {name: [] for name in pipes}
            p99: dict[str, list[float]] = {name: [] for name in pipes}
            for k in range(pairs):
                for name in (list(pipes) if k % 2 == 0 else list(pipes)[::-1]):
                    before = host_speed()
                    s = pipes[name].scan(msgs, rate=rate)
                    speed = (before + host_speed()) / 2
                    p50[name].append((float(np.percentile(s["latency"], 50)), float(np.percentile(s["ingest_latency"], 50))))
                    p99[name].append(float(np.percentile(s["ingest_latency"], 99)))
                    print(f"{rate:>9,.0f} Hz {name:>8}  {percentiles(s['latency'])}    "
                          f"{percentiles(s['ingest_latency'])}{stages(s['split'])}{held_line(pipes[name], held, name)}"
                          f"{worker_wait_line(pipes[name], early, name)}"
                          f"{waiting_line(pipes[name], loops, name)}{cpu_line(s)}{load_line(s)}{episodes(s['split'])}"
                          f"; host {speed:.1f} ns per loop step",
                          flush=True)
            if against:
                ratios = [statistics.median(a[j] / b[j] for a, b in zip(p50["this"], p50["against"])) for j in (0, 1)]
                tail = statistics.median(a / b for a, b in zip(p99["this"], p99["against"]))
                print(f"{rate:>9,.0f} Hz  p50 this / against, median of {pairs} pairs: source -> reducer "
                      f"{ratios[0]:.3f}, ingester -> reducer {ratios[1]:.3f}; p99 ingester -> reducer {tail:.3f}")
    finally:
        for p in pipes.values():
            p.close()


def paced_scans(pipe: CliPipeline, count: int, rate_for: Callable[[], float], least: int,
                speed_at_max: float, us_at_max: float | None = None) -> list[dict[str, Any]]:
    """``count`` 2 s scans of 2 kB frames (at least ``least``), each at ``rate_for()`` (asked
    just before it); beside each (``held``) how long the ingester held frames for assignments,
    its CPU per event against ``us_at_max`` and how busy the machine was (:func:`load_line`),
    and the host's speed around it against ``speed_at_max``; each scan's ``rate`` kept."""
    scans = []
    for _ in range(count):
        rate = rate_for()
        busy = stins_messages(max(least, int(2 * rate)), 2048)
        time.sleep(HEARTBEAT_LAG_S)  # what came before published: the holding is counted from here
        held = {"ours": pipe.assignment_wait_s()}
        early = {"ours": pipe.worker_assignment_waits()}
        before = host_speed()
        summary = pipe.scan(busy, rate=rate)
        speed = (before + host_speed()) / 2
        summary["rate"] = rate
        summary["held"] = (f"{held_line(pipe, held, 'ours')}{worker_wait_line(pipe, early, 'ours')}"
                           f"{load_line(summary, us_at_max)}; {speed_note(speed, speed_at_max)}")
        scans.append(summary)
        progress(f"paced scan at {rate:,.0f} Hz: p99 ingester -> reducer {np.percentile(summary['ingest_latency'], 99) * 1e3:.1f} ms")
    return scans


def labelled(scans: list[dict[str, Any]], what: str) -> list[tuple[str, dict[str, Any]]]:
    """Table rows ``ours <what> (<rate> Hz) #k`` and, for several scans, one of them pooled
    (one 2 s scan's p99 rests on its worst ~500 events)."""
    rows = [(f"ours {what} ({s['rate']:,.0f} Hz) #{k + 1}", s) for k, s in enumerate(scans)]
    if len(scans) > 1:
        rows.append((f"ours {what}, {len(scans)} scans pooled",
                     {key: [x for s in scans for x in s[key]] for key in ("latency", "ingest_latency", "split")}))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small runs, 1 pair (a smoke test)")
    ap.add_argument("--pairs", type=int, default=None, help="interleaved rounds per workload (default 3, quick 1)")
    ap.add_argument("--peer-venv", default=os.environ.get(PEER_ENV), help=f"venv with dranspose 0.2.0 (or ${PEER_ENV})")
    ap.add_argument("--no-peer", action="store_true", help="skip dranspose 0.2.0 even when installed")
    ap.add_argument("--workers", default="2,4", help="worker counts for the 2 kB runs (default 2,4)")
    ap.add_argument("--events", type=int, default=None, help="2 kB frames per scan (default 20000, quick 2000)")
    ap.add_argument("--latency-at", default=None, metavar="HZ[,HZ...]",
                    help="only the latency of this project's pipeline at these rates (3 s of 2 kB frames each)")
    ap.add_argument("--against", default=None, metavar="SRC",
                    help="with --latency-at: also another tree's src folder (e.g. an earlier commit's), "
                         "scans alternating, --pairs per rate; prints the median per-pair p50 ratio")
    ap.add_argument("--own-sessions", action="store_true",
                    help="start every component in a session of its own (as from separate terminals) instead of "
                         "in this one, each in a process group of its own (as dranspose combined starts them)")
    args = ap.parse_args()
    if args.against:
        require_built(args.against)  # before any pipeline starts
    if args.latency_at:
        latency_only([float(r) for r in args.latency_at.split(",")], args.against, args.pairs or 1, args.own_sessions)
        return
    pairs = args.pairs or (1 if args.quick else 3)
    n_small = args.events or (2000 if args.quick else 20000)
    n_large = 50 if args.quick else 500
    lat_n = 100 if args.quick else 1000
    venv = None if args.no_peer else args.peer_venv
    if venv and not os.path.exists(os.path.join(venv, "bin", "dranspose")):
        raise SystemExit(f"no dranspose CLI in {venv}/bin (make the venv as the docstring says)")
    small, large = stins_messages(n_small, 2048), stins_messages(n_large, 2 * 1024 * 1024)
    rows: list[dict[str, Any]] = []
    latency: list[tuple[str, dict[str, Any]]] = []
    for nworkers in [int(w) for w in args.workers.split(",")]:
        pipes: dict[str, CliPipeline] = {}
        try:
            pipes["ours"] = ours(nworkers, own_sessions=args.own_sessions)
            if venv:
                pipes["0.2.0"] = peer(venv, nworkers, args.own_sessions)
            for p in pipes.values():
                p.scan(stins_messages(200, 2048))  # warm-up
            # with 2 workers: the host's speed while the maximum is taken, the 80% scans read against it
            before = host_speed() if nworkers == 2 else 0.0
            at_max = throughput(f"2 kB, {nworkers} workers", small, 2048, pipes, nworkers, pairs)
            rows.append(at_max)
            if nworkers == 2:
                speed_at_max = (before + host_speed()) / 2
                rows.append(throughput("2 MB, 2 workers", large, 2 * 1024 * 1024, pipes, nworkers, pairs))
                slow = stins_messages(lat_n // 2 if args.quick else lat_n, 2048)
                # 0.2.0's 50 Hz scan first, then its processes go: idle, its components still
                # wake often (~70 ms of CPU per second on these two cores): our p50 at 50 Hz
                # beside them was 1.07x (six interleaved pairs), and they fill the cores at 80%.
                # Ours is measured without them (0.2.0 has ours beside it, idle: ~50 ms/s).
                peer_50 = None
                if "0.2.0" in pipes:
                    peer_50 = pipes["0.2.0"].scan(slow, rate=50.0)
                    pipes.pop("0.2.0").close()
                progress("latency at 50 Hz")
                latency.append(("ours 50 Hz", pipes["ours"].scan(slow, rate=50.0)))
                if peer_50 is not None:
                    latency.append(("0.2.0 50 Hz", peer_50))
                latency.append(("raw 3-hop relay 50 Hz", {"latency": relay_latency(slow, 50.0)}))
                # 80% of *our* maximum: ours only. Then the same, each scan at 80% of a burst
                # taken just before it: the host's speed moves within minutes (printed beside)
                count = 1 if args.quick else 3
                rate = 0.8 * at_max["ours"]
                us_at_max = at_max.get("ours_us_per_event")
                scans = paced_scans(pipes["ours"], count, lambda: rate, lat_n, speed_at_max, us_at_max)
                latency.extend(labelled(scans, "80% of max"))
                adjacent = paced_scans(pipes["ours"], count, lambda: 0.8 * n_small / pipes["ours"].scan(small)["elapsed"],
                                       lat_n, speed_at_max, us_at_max)
                latency.extend(labelled(adjacent, "80% of a max just before"))
        finally:
            for p in pipes.values():
                p.close()
    print(f"\n{'workload':<20}{'ours':>14}{'relay':>14}{'0.2.0':>14}{'ours/relay':>12}{'ours/0.2.0':>12}")
    for row in rows:
        r020 = f"{row['ours/0.2.0']:.1f}x" if "ours/0.2.0" in row else "-"
        print(f"{row['label']:<20}{fmt_rate(row, 'ours'):>14}{fmt_rate(row, 'relay'):>14}{fmt_rate(row, '0.2.0'):>14}"
              f"{row['ours/relay']:>11.2f}x{r020:>12}")
    print("\nlatency to the reducer's process_result (2 kB frames, 2 workers), from the source's send and"
          "\nfrom the ingester's read of the frame (EventData.created_at; 0.2.0's events have none):")
    print(f"  {'':<46} {'source -> reducer':^30}  {'ingester -> reducer':^30}")
    for label, s in latency:
        ingest = percentiles(s["ingest_latency"]) if s.get("ingest_latency") else "-"
        print(f"  {label:<46} {percentiles(s['latency'])}  {ingest:^30}{stages(s.get('split', []))}{s.get('held', '')}")
    print(f"\n({pairs} interleaved rounds per workload; ratio = median of per-round time ratios; "
          f"default settings, every component its own CLI process, "
          f"{'each in a session of its own' if args.own_sessions else 'all in this session'}; "
          f"peer 0.2.0: {'yes' if venv else 'not run'})")


if __name__ == "__main__":
    main()
