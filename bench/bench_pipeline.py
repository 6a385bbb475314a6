"""End-to-end pipeline benchmark against a raw pyzmq relay, in the same run (A B A B ...).

dranspose: source (this process, PUSH) -> ingester -> 2 workers -> reducer, every component
its own process, with a private redis-server and the controller; "done" = the controller's
/api/v1/progress reports finished. Peer: source -> relay process -> 2 sink processes (PUSH/PULL,
``copy=False``): the same hops and data processes as source -> ingester -> 2 workers, with no
analysis framework (no controller, Redis, reducer or completion accounting).

    python bench/bench_pipeline.py            # full run (a few minutes)
    python bench/bench_pipeline.py --quick    # under a minute

Prints events/s for 2 kB frames, MB/s for 2 MB frames, their ratios to the relay (median of
per-pair ratios) and the p50/p99 latency ingester receive -> reducer process_result at 50 Hz.
"""

from __future__ import annotations

import argparse
import json
import os
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dranspose.local.redis_server import RedisServer  # noqa: E402
from dranspose.local.supervisor import Supervisor  # noqa: E402
from dranspose.transport.sockets import free_tcp_port  # noqa: E402


def stins_messages(n: int, nbytes: int, timestamps: bool = False) -> list[list[bytes]]:
    """A STINS series of ``n`` uint8 frames of ``nbytes`` (payload shared, headers per frame)."""
    blob = np.random.default_rng(0).integers(0, 255, nbytes, dtype=np.uint8).tobytes()
    msgs = [[json.dumps({"htype": "header", "msg_number": 0, "filename": ""}).encode()]]
    for i in range(n):
        meta = {"htype": "image", "msg_number": i + 1, "frame": i, "shape": [nbytes], "type": "uint8", "compression": "none"}
        msgs.append([json.dumps(meta).encode(), blob])
    msgs.append([json.dumps({"htype": "series_end", "msg_number": n + 1}).encode()])
    return msgs


def send_stamped(sock: zmq.Socket, msgs: list[list[bytes]], rate: float | None) -> None:
    period = 1.0 / rate if rate else 0.0
    t0 = time.perf_counter()
    for k, parts in enumerate(msgs):
        if period:
            delay = t0 + k * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        if rate and len(parts) == 2:  # latency runs: stamp the send time into the JSON
            meta = json.loads(parts[0])
            meta["t"] = time.time()
            parts = [json.dumps(meta).encode(), parts[1]]
        sock.send_multipart(parts, copy=False)


class Pipeline:
    """The whole pipeline as processes, started once and reused for every measurement."""

    def __init__(self, nworkers: int = 2) -> None:
        self.redis = RedisServer().start()
        self.sup = Supervisor(log_level="WARNING")
        self.sup.env.update(REDIS_URL=self.redis.url, REDUCER_URL=f"tcp://127.0.0.1:{free_tcp_port()}")
        self.sup.env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        port = free_tcp_port()
        self.api = f"http://127.0.0.1:{port}"
        self.src = zmq.Context.instance().socket(zmq.PUSH)
        self.src.setsockopt(zmq.SNDHWM, 100000)
        src_port = self.src.bind_to_random_port("tcp://127.0.0.1")
        self.sup.spawn("controller", "controller", "--host", "127.0.0.1", "--port", str(port))
        self.sup.spawn("reducer", "reducer", "-c", "bench.payloads:BenchReducer", "-p", str(free_tcp_port()))
        self.sup.spawn("ingester", "ingester", "-c", "ZmqPullSingleIngester", "-u", f"tcp://127.0.0.1:{src_port}", "-n", "det",
                       "-i", f"tcp://127.0.0.1:{free_tcp_port()}")
        for i in range(nworkers):
            self.sup.spawn(f"worker{i}", "worker", "-n", f"w{i}", "-c", "bench.payloads:BenchWorker", "--capacity", "64")
        self.nworkers = nworkers
        self.client = httpx.Client(base_url=self.api, timeout=10)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                cfg = self.client.get("/api/v1/config").json()
                if cfg["reducer"] and len(cfg["workers"]) == self.nworkers and cfg["ingesters"] and \
                        len(cfg["ingesters"][0].get("workers", [])) == self.nworkers:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("pipeline did not start")

    def scan(self, msgs: list[list[bytes]], rate: float | None = None) -> tuple[float, dict[str, Any]]:
        n = len(msgs) - 2
        mapping = {"det": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}
        self.client.post("/api/v1/mapping", json=mapping).raise_for_status()
        time.sleep(0.3)  # let every component switch to the new mapping
        t0 = time.time()
        sender = threading.Thread(target=send_stamped, args=(self.src, msgs, rate))
        sender.start()
        while True:
            p = self.client.get("/api/v1/progress").json()
            if p["finished"]:
                break
            time.sleep(0.05)  # polling fast would burn the controller CPU the pipeline needs
        # the controller stamps the moment progress turned finished (same machine, same clock)
        elapsed = self.client.get("/api/v1/status").json()["scan_finished"] - t0
        sender.join()
        if p["completed_events"] != n + 2:
            raise RuntimeError(f"scan incomplete: {p}")
        return elapsed, p

    def reducer_values(self, name: str) -> Any:
        cfg = self.client.get("/api/v1/config").json()
        base = cfg["reducer"]["http"]
        root = httpx.get(f"{base}/", params={"domain": "/"}).json()["root"]
        links = httpx.get(f"{base}/groups/{root}/links", params={"domain": "/"}).json()["links"]
        oid = next(link["id"] for link in links if link["title"] == name)
        return np.array(httpx.get(f"{base}/datasets/{oid}/value", params={"domain": "/"}).json()["value"])

    def close(self) -> None:
        self.client.close()
        self.src.close(0)
        self.sup.stop_all()
        self.redis.stop()


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
            push.close(linger=-1)
            return
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
        if count == 1:
            done.put(("first", time.perf_counter()))
    done.put((count, time.perf_counter()))


def relay_run(msgs: list[list[bytes]], nsinks: int = 2) -> float:
    """Seconds to push ``msgs`` through source -> relay -> ``nsinks`` sinks (separate processes,
    ``copy=False``): the same processes and hops as source -> ingester -> workers."""
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
    finished = 0
    while finished < nsinks:
        item = q.get(timeout=120)
        if item[0] == "first":
            continue
        counts += item[0]
        end = max(end, item[1])
        finished += 1
    relay.join(10)
    for p in sinks:
        p.join(10)
    src.close(0)
    if counts != len(msgs):
        raise RuntimeError(f"relay delivered {counts} of {len(msgs)} messages")
    return end - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--latency-only", action="store_true", help="only the 50 Hz latency run")
    ap.add_argument("--sinks", type=int, default=2, help="relay sink processes (default 2 = our 2 workers)")
    args = ap.parse_args()
    pairs = args.pairs or (2 if args.quick else 5)
    n_small = 5000 if args.quick else 20000
    n_large = 100 if args.quick else 400
    small = stins_messages(n_small, 2048)
    large = stins_messages(n_large, 2 * 1024 * 1024)
    pipe = Pipeline(2)
    try:
        pipe.scan(stins_messages(200, 2048))  # warm-up
        rows = []
        for label, msgs, nbytes in [] if args.latency_only else (("2 kB frames", small, 2048), ("2 MB frames", large, 2 * 1024 * 1024)):
            ours, peer = [], []
            for _ in range(pairs):
                peer.append(relay_run(msgs, args.sinks))
                ours.append(pipe.scan(msgs)[0])
            n = len(msgs) - 2
            ratios = [p / o for o, p in zip(ours, peer)]
            rows.append((label, n / statistics.median(ours), n / statistics.median(peer),
                         n * nbytes / 1e6 / statistics.median(ours), n * nbytes / 1e6 / statistics.median(peer),
                         statistics.median(ratios)))
        lat_n = 250 if args.quick else 1000
        pipe.scan(stins_messages(lat_n, 2048), rate=50.0)
        lat = pipe.reducer_values("latency") * 1e3
        split = pipe.reducer_values("latency_split") * 1e3
    finally:
        pipe.close()
    print(f"\n{'workload':<14}{'ours ev/s':>12}{'relay ev/s':>12}{'ours MB/s':>11}{'relay MB/s':>12}{'ours/relay':>12}")
    for label, oe, pe, om, pm, ratio in rows:
        print(f"{label:<14}{oe:>12.0f}{pe:>12.0f}{om:>11.1f}{pm:>12.1f}{ratio:>11.2f}x")
    print(f"\nlatency ingester receive -> reducer process_result at 50 Hz, {len(lat)} events: "
          f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms "
          f"(p50 ingester->worker {np.percentile(split[:, 0], 50):.2f} ms, worker->reducer {np.percentile(split[:, 1], 50):.2f} ms)")
    print(f"({pairs} interleaved pairs; ratio = median of per-pair relay_time/our_time; 2 workers; relay with {args.sinks} sinks)")


if __name__ == "__main__":
    main()
