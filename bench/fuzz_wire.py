"""Coverage-guided fuzzing of every network-facing wire decoder (atheris + libFuzzer).

For each protocol of ``dranspose.protocols.REGISTRY`` one libFuzzer run feeds mutated inputs,
seeded with a valid synthetic series, through the protocol's cutter, unit decoder and compat
parser (``tests/protocols/kit.py``: :func:`run_target`; the TCP position capture goes through
its byte-stream splitter first, Sardana through the HTTP body check). Three more targets cover
dranspose's own formats between components (``tests/protocols/transport_kit.py``): events as
a worker decodes them (single and packed batches), results as the reducer decodes them (with
the restricted unpickler), and the control messages read from Redis. dranspose's Python code
is instrumented for coverage; the compiled decoders run as deployed.

A finding is any exception other than ``ProtocolError`` (a crash), an input taking longer
than ``--timeout`` seconds (a hang) or the process passing ``--rss-mb`` of memory (an
unbounded allocation): libFuzzer stops, writes the input to ``crash-*``/``timeout-*``/
``oom-*`` in the work directory and this script exits non-zero.

    python bench/fuzz_wire.py                    # the documented count: 10**6 inputs per protocol
    python bench/fuzz_wire.py --runs 20000       # a quick pass
    python bench/fuzz_wire.py --only STINS PCAP  # some protocols
    python bench/fuzz_wire.py --jobs 2           # two protocols at a time
    python bench/fuzz_wire.py --max-seconds 600  # a time budget per protocol instead of the count

Needs ``atheris`` (``pip install atheris``, or the ``test`` extra). Prints one line per
protocol (inputs, seconds, inputs/s, coverage edges, features) and writes them as JSON to
``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_RUNS = 10**6


def _child(typ: str, libfuzzer_args: list[str]) -> None:
    """Run libFuzzer on one protocol in this process (libFuzzer ends the process)."""
    import logging

    import atheris

    logging.disable(logging.CRITICAL)  # decoders log what they drop; millions of lines cost time
    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["dranspose"]):
        import dranspose.protocols  # noqa: F401
        from tests.protocols import kit

        from tests.protocols import transport_kit

    if typ in transport_kit.TARGETS:
        def one_input(data: bytes) -> None:
            transport_kit.run_target(typ, data)
    else:
        kit.protocol_module(typ)  # imported (and instrumented) before fuzzing starts

        def one_input(data: bytes) -> None:
            kit.run_target(typ, data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_COV = re.compile(r"cov: (\d+) ft: (\d+)")


def _run_one(typ: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.protocols import kit, transport_kit

    corpus = workdir / f"corpus-{typ.replace(':', '-')}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(transport_kit.seeds(typ) if typ in transport_kit.TARGETS else kit.seeds(typ)):
        (corpus / f"seed-{i}").write_bytes(seed)
    libfuzzer = [
        f"-runs={args.runs}",
        f"-max_len={args.max_len}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-seed={args.seed}",
        "-print_final_stats=1",
        f"-artifact_prefix={workdir}/{typ.replace(':', '-')}-",
        str(corpus),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if args.max_seconds:
        libfuzzer.insert(0, f"-max_total_time={args.max_seconds}")
    logfile = workdir / f"{typ.replace(':', '-')}.log"
    t0 = time.monotonic()
    with open(logfile, "w") as err:  # followable while it runs
        proc = subprocess.run(
            [sys.executable, __file__, "--child", typ, "--", *libfuzzer],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=workdir,
        )
    elapsed = time.monotonic() - t0
    log = logfile.read_text(errors="replace")
    done = _DONE.findall(log)
    cov = _COV.findall(log)
    runs = int(done[-1][0]) if done else 0
    return {
        "typ": typ,
        "ok": proc.returncode == 0 and (runs >= args.runs or bool(args.max_seconds)),
        "returncode": proc.returncode,
        "inputs": runs,
        "seconds": round(elapsed, 1),
        "inputs_per_s": round(runs / elapsed) if elapsed else 0,
        "cov_edges": int(cov[-1][0]) if cov else None,
        "features": int(cov[-1][1]) if cov else None,
        "log": str(logfile),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        rest = argv[2:]
        _child(argv[1], rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=DOCUMENTED_RUNS, help="inputs per protocol (default 10**6)")
    parser.add_argument("--only", nargs="*", help="protocol typs to fuzz (default: all registered)")
    parser.add_argument("--max-len", type=int, default=8192, help="largest input in bytes")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (a hang beyond)")
    parser.add_argument("--rss-mb", type=int, default=2048, help="memory a fuzzing process may use")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="protocols fuzzed at the same time")
    parser.add_argument(
        "--max-seconds", type=int, default=0, help="stop each protocol after this long (0: run the full count)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="corpus, logs and findings (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        import atheris  # noqa: F401
    except ImportError as exc:
        print(f"fuzz_wire needs atheris (pip install atheris): {exc}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from dranspose.protocols import REGISTRY
    from tests.protocols.transport_kit import TARGETS

    known = [*sorted(REGISTRY), *TARGETS]
    typs = args.only or known
    unknown = set(typs) - set(known)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {known}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fuzz_wire-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {len(typs)} wire formats, {args.runs} inputs each; work dir {workdir}", flush=True)
    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for res in pool.map(lambda typ: _run_one(typ, args, workdir), typs):
            results.append(res)
            _report(res)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


def _report(res: dict[str, Any]) -> None:
    status = "ok" if res["ok"] else f"FINDING (exit {res['returncode']}, see {res['log']})"
    print(
        f"{res['typ']:<18} {res['inputs']:>9} inputs {res['seconds']:>8.1f} s {res['inputs_per_s']:>7}/s "
        f"cov {res['cov_edges']} ft {res['features']}  {status}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
