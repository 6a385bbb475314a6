"""Benchmark: the CPU the three data loops spend per event in their own code, in-process (no
sockets, no other processes, warm caches): the functions each loop calls per event, with 2 kB
STINS frames in batches of 64 as ``bench_pipeline.py`` sends them.

* ingester: cut a received image message (``StinsCutter.feed``), pair it with its route
  (``StreamPairing``), write its header (``framing.fill_header``, or ``encode_header`` in trees
  without it), queue it and join the
  batch (``batching.Outbox``);
* worker: split a received batch into its events (``framing.decode_all``), assemble each
  (``Assembler``), run the benchmark payload's ``process_event``, build and encode the
  result (``results.encode``), queue and join the results;
* reducer: split a received result batch (``batching.split_parsed``), check each header and
  unpickle it with the allow-list (``results.decode``).

Prints µs per event for each (best of 5 repetitions). ``--against DIR`` alternates runs of this
tree and of another checkout's ``src/`` in subprocesses and prints the median per-pair ratio
(this / other; below 1 = less CPU per event).

    python bench/bench_data_path.py
    python bench/bench_data_path.py --against /tmp/old --pairs 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64


def _best(fn: Callable[[], Any], reps: int) -> float:
    """Seconds per call of ``fn``: the best of 5 runs of ``reps`` calls."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def measure(reps: int = 300) -> dict[str, float]:
    """µs per event of each loop's own code (see the module docstring)."""
    import zmq

    # dranspose first: bench_pipeline puts this tree's src/ in front of sys.path when imported
    from dranspose.core.assembly import Assembler
    from dranspose.core import pairing as pairing_module
    from dranspose.core.pairing import StreamPairing
    from dranspose.event import ResultData, construct
    from dranspose.protocols.stins import StinsCutter
    from dranspose.transport import batching, framing, results

    from bench.bench_pipeline import stins_messages
    from bench.payloads import BenchWorker

    fill_header = getattr(framing, "fill_header", None)
    images = [[zmq.Frame(p) for p in m] for m in stins_messages(BATCH + 2, 2048)[1:-1]][:BATCH]
    stamp = framing.now_iso()
    cutter = StinsCutter()
    cutter.feed(images[0])  # the dtype is known from then on, as in a scan

    def ingester() -> list[Any]:
        pairing = StreamPairing(False, byte_limit=1 << 30)
        if len(pairing_module.Route.__args__) == 3:  # (event, workers, whole); earlier trees: (event, workers)
            pairing.add_routes((i, ("w0",), False) for i in range(BATCH))
        else:
            pairing.add_routes((i, ("w0",)) for i in range(BATCH))  # type: ignore[misc]
        outbox = batching.Outbox()
        for parts in images:
            for unit in cutter.feed(parts):
                pairing.add_unit(unit)
        sent = []
        kept: list[Any] = [None, None]
        for pair in pairing.pairs():
            if fill_header is not None:  # as the ingester writes headers (trees that have it)
                key = ("STINS", len(pair.unit.frames), "m-uuid")
                if key != kept[0]:  # the JSON around event number and stamp, kept per stream
                    kept[:] = [key, framing.header_parts((("det", *key[:2]),), key[2])]
                header = fill_header(pair.event, kept[1], stamp)
            else:
                header = framing.encode_header(pair.event, (("det", "STINS", len(pair.unit.frames)),), "m-uuid", stamp)
            full = outbox.add("w0", [header, *pair.unit.frames], 0.0, pair.unit.nbytes)
            if full is not None:  # a batch fills at 64 events: sent at once
                sent.append(full)
        return sent + [parts for _dest, parts, _n in outbox.drain()]

    received = [zmq.Frame(bytes(p)) for p in ingester()[0]]
    payload = BenchWorker()

    def worker() -> list[Any]:
        assembler = Assembler()
        outbox = batching.Outbox()
        sent = []
        for decoded in framing.decode_all(received):  # (event, mapping, streams, created[, whole])
            event, _mapping, streams, created = decoded[:4]
            assembler.expect(event, frozenset(("det",)))
            ev = assembler.add(event, streams, created)
            result = payload.process_event(ev)
            rd = construct(ResultData, event_number=event, worker="w0", parameters_hash=None, payload=result)
            full = outbox.add("reducer", results.encode(rd, "m-uuid"), 0.0)
            if full is not None:
                sent.append(full)
        return sent + [parts for _dest, parts, _n in outbox.drain()]

    result_batch = [zmq.Frame(bytes(p)) for p in worker()[0]]
    allow = results.result_allow_list(["bench.payloads:BenchWorker"])

    def reducer() -> int:
        n = 0
        for parsed, single in batching.split_parsed(result_batch, results.frames_declared):
            if parsed is not None:
                single[2:] = batching.detach(single[2:])
            header = results.decode_header(single, parsed)
            results.decode(single, allow, header)
            n += 1
        return n

    assert reducer() == BATCH  # every result of the batch decodes
    return {name: _best(fn, reps) / BATCH * 1e6 for name, fn in (("ingester", ingester), ("worker", worker), ("reducer", reducer))}


def _run(src: Path, reps: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)]))
    code = (
        f"import json, dranspose; from bench.bench_data_path import measure; "
        f"print(json.dumps(dict(measure({reps}), source=dranspose.__file__)))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=str(ROOT))
    if done.returncode != 0:
        raise RuntimeError(f"measuring {src} failed:\n{done.stderr[-2000:]}")
    got = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    source = Path(got.pop("source")).resolve()
    if not source.is_relative_to(src.resolve()):
        raise RuntimeError(f"measuring {src} imported dranspose from {source}")
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="another checkout (its src/ is used) or a src folder")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--reps", type=int, default=300, help="batches per repetition")
    args = parser.parse_args()
    ours = _run(ROOT / "src", args.reps)
    print("this tree:", ", ".join(f"{k} {v:.2f}" for k, v in ours.items()), "µs per event")
    if args.against is None:
        return 0
    other = args.against / "src" if (args.against / "src").is_dir() else args.against
    sys.path.insert(0, str(ROOT))
    from bench.trees import require_built

    require_built(other)  # else the other tree's reference twins would be measured
    ratios: dict[str, list[float]] = {}
    for i in range(args.pairs):
        pair = [(ROOT / "src", "this"), (other, "other")]
        got = {label: _run(src, args.reps) for src, label in (pair if i % 2 == 0 else pair[::-1])}
        for k in got["this"]:
            ratios.setdefault(k, []).append(got["this"][k] / got["other"][k])
        print(f"pair {i + 1}: " + ", ".join(f"{k} {got['this'][k]:.2f} / {got['other'][k]:.2f}" for k in got["this"]), flush=True)
    print(
        f"median of {args.pairs} per-pair ratios this / other: "
        + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in ratios.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
