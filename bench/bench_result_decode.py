"""Benchmark: reducer-side result decoding (header checks + allow-listed unpickling), in us
per result, for three payload shapes. ``--against DIR`` alternates runs of this tree and of
another checkout (``DIR/src``) in subprocesses and prints the median per-pair ratio
(this / other; < 1 = faster).

    python bench/bench_result_decode.py
    python bench/bench_result_decode.py --against ../other-checkout --pairs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(n: int = 3000) -> dict[str, float]:
    import numpy as np

    from dranspose.event import ResultData
    from dranspose.transport import results

    allow = results.result_allow_list(["dranspose.demo.payload:DemoWorker"])
    payloads = {
        "demo": {"sum": 1.5, "max": np.float32(3), "pos": (1, 2), "preview": np.zeros((64, 64), np.float32)},
        "image": {"img": np.zeros((1024, 1024), np.float32)},
        "floats": {"v": [float(i) for i in range(1000)]},
    }
    out = {}
    for name, payload in payloads.items():
        parts = results.encode(ResultData(event_number=1, worker="w", payload=payload), "m")
        t0 = time.perf_counter()
        for _ in range(n):
            results.decode(parts, allow)
        out[name] = (time.perf_counter() - t0) / n * 1e6
    return out


def _run(src: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    code = "import json, sys; sys.path.insert(0, %r); from bench.bench_result_decode import measure; print(json.dumps(measure()))" % str(ROOT)
    import json

    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="another checkout to compare with (its src/ is used)")
    parser.add_argument("--pairs", type=int, default=10)
    args = parser.parse_args()
    if args.against is None:
        sys.path.insert(0, str(ROOT / "src"))
        print({k: round(v, 1) for k, v in measure().items()}, "us per result")
        return 0
    ratios: dict[str, list[float]] = {}
    for _ in range(args.pairs):
        theirs, ours = _run(args.against / "src"), _run(ROOT / "src")
        for k in ours:
            ratios.setdefault(k, []).append(ours[k] / theirs[k])
    print({k: round(statistics.median(v), 2) for k, v in ratios.items()}, "median ratio this/other per pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
