"""How long the controller takes to accept a long legacy trigger map (``POST /api/v1/mapping``
until its answer: parse, compile, start the scan), as deployed: the pipeline of
``bench_pipeline.py`` (every component its own CLI process, default settings), against
dranspose 0.2.0 (when installed) and/or another tree's ``src``, the same map posted to each in
turn (the first of each round switching), medians and the median of per-round ratios.

    python bench/bench_mapping.py                                  # 50,000 and 200,000 events
    python bench/bench_mapping.py --peer-venv ~/venvs/dranspose020 # or DRANSPOSE020_VENV
    python bench/bench_mapping.py --against /tmp/old/src --rounds 6

The map is the benchmark's own shape: event i to one virtual worker of constraint i (what a
scan of N points posts), one stream. No frames are sent; each post replaces the last map.
Beside the times, each controller's resident memory at its peak so far (``VmHWM``): the
lengths go up, so after each length it is what holding the longest map took.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import PEER_ENV, CliPipeline, ours, peer, stins_messages  # noqa: E402

SETTLE_S = 1.5  # after an answer: the components take the new map before the next post


def legacy_map(n: int) -> bytes:
    return json.dumps({"det": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]}).encode()


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set so far (``VmHWM``), MB; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def post_seconds(pipe: CliPipeline, body: bytes) -> float:
    t0 = time.perf_counter()
    r = pipe.client.post("/api/v1/mapping", content=body, headers={"content-type": "application/json"}, timeout=600)
    took = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"{pipe.label}: mapping refused: {r.status_code} {r.text[:300]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default="50000,200000", help="map lengths (default 50000,200000)")
    ap.add_argument("--rounds", type=int, default=4, help="posts per pipeline and length (default 4)")
    ap.add_argument("--peer-venv", default=os.environ.get(PEER_ENV), help=f"venv with dranspose 0.2.0 (or ${PEER_ENV})")
    ap.add_argument("--against", default=None, metavar="SRC", help="also another tree's src folder")
    args = ap.parse_args()
    if args.against and not os.path.isfile(os.path.join(args.against, "dranspose", "__init__.py")):
        raise SystemExit(f"no dranspose package in {args.against} (the installed one would be measured instead)")
    pipes: dict[str, CliPipeline] = {}
    try:
        pipes["ours"] = ours(2)
        if args.against:
            pipes["against"] = ours(2, args.against, "against")
        if args.peer_venv:
            pipes["0.2.0"] = peer(args.peer_venv, 2)
        for p in pipes.values():
            p.scan(stins_messages(200, 2048))  # every component up and in a scan once
        print(f"{'events':>10}  " + "  ".join(f"{name:>12}" for name in pipes) + "   ours / other (median per round)")
        for n in [int(x) for x in args.events.split(",")]:
            body = legacy_map(n)
            times: dict[str, list[float]] = {name: [] for name in pipes}
            for k in range(args.rounds):
                for name in (list(pipes) if k % 2 == 0 else list(pipes)[::-1]):
                    times[name].append(post_seconds(pipes[name], body))
                    time.sleep(SETTLE_S)
            ratios = ", ".join(f"{name} {statistics.median(a / b for a, b in zip(times['ours'], ts)):.2f}"
                               for name, ts in times.items() if name != "ours")
            print(f"{n:>10,}  " + "  ".join(f"{statistics.median(ts):>11.2f}s" for ts in times.values()) + f"   {ratios}",
                  flush=True)
            peaks = {name: peak_rss_mb(p.procs[0].pid) for name, p in pipes.items()}  # procs[0]: the controller
            print(f"{'':>10}  " + "  ".join(f"{v:>10.0f}MB" if v is not None else f"{'-':>12}" for v in peaks.values())
                  + "   controllers' peak resident memory so far", flush=True)
    finally:
        for p in pipes.values():
            p.close()


if __name__ == "__main__":
    main()
