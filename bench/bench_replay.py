"""Replay throughput (events/s, MB/s) over the largest captures and a synthesized 4M-pixel stream.

Peer: a bare ``cbor2`` decode loop over the same file (what any replay must at least do).
Runs interleaved A B A B ... and reports the median of the per-pair time ratios
(replay / bare decode) next to replay's own events/s and MB/s (payload bytes of all frames).

    python bench/bench_replay.py            # full
    python bench/bench_replay.py --quick    # < 1 minute
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import cbor2

from dranspose.dumps.dumpfile import CountingReader, open_binary, read_capture, write_dump
from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.replay import replay
from dranspose.sources.synth import synth_stins

CAPTURES = Path(os.environ.get("DRANSPOSE_CAPTURES", Path(__file__).resolve().parents[1] / "tests" / "data"))


class NoopWorker:
    """Touches every frame's length; returns a tiny result (measures replay, not analysis)."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        return sum(len(f) for s in event.streams.values() for f in s.frames)


class CountReducer:
    def __init__(self, **kwargs: Any) -> None:
        self.publish = {"bytes": 0}

    def process_result(self, result: Any, parameters: Any) -> None:
        self.publish["bytes"] += result.payload


def _capture_as_dump(path: Path, out: Path, typ: str) -> Path:
    """Wrap each message of a raw capture as one event of stream ``cap``."""

    def msgs() -> Iterator[InternalWorkerMessage]:
        for i, parts in enumerate(read_capture(path)):
            yield InternalWorkerMessage.model_construct(
                event_number=i, streams={"cap": StreamData.model_construct(typ=typ, frames=parts)}
            )

    write_dump(out, msgs())
    return out


def _synth_dump(out: Path, n: int, compression: str) -> Path:
    def msgs() -> Iterator[InternalWorkerMessage]:
        for i, parts in enumerate(synth_stins(n, (2048, 2048), "uint16", compression, distinct=2)):
            yield InternalWorkerMessage.model_construct(
                event_number=i, streams={"det": StreamData.model_construct(typ="STINS", frames=parts)}
            )

    write_dump(out, msgs())
    return out


def bare_decode(path: Path) -> int:
    n = 0
    with open_binary(path) as f:
        dec = cbor2.CBORDecoder(CountingReader(f))  # non-seekable: cbor2 never seeks back in gzip
        while True:
            try:
                dec.decode()
            except cbor2.CBORDecodeEOF:
                return n
            n += 1


def run_replay(path: Path) -> Any:
    return replay("__main__:NoopWorker", "__main__:CountReducer", [path], nworkers=2)


def bench(name: str, path: Path, pairs: int) -> dict[str, Any]:
    ratios, times, summary = [], [], None
    for _ in range(pairs):
        t0 = time.perf_counter()
        summary = run_replay(path)
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        bare_decode(path)
        b = time.perf_counter() - t0
        ratios.append(a / b)
        times.append(a)
    assert summary is not None and summary.errors == 0
    t = statistics.median(times)
    return {
        "name": name,
        "events": summary.events,
        "MB": summary.payload_bytes / 1e6,
        "ev/s": summary.events / t,
        "MB/s": summary.payload_bytes / 1e6 / t,
        "ratio": statistics.median(ratios),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pairs = 3 if args.quick else 7
    nsynth = 20 if args.quick else 100
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cases = [
            ("eiger-legacy-1m-bslz4 dump (.gz)", CAPTURES / "eiger-legacy-1m-bslz4.dump.cbors.gz"),
            ("xspress3 capture as dump", _capture_as_dump(CAPTURES / "xspress3-dump.cbors", d / "x3.cbors", "xspress")),
            ("stream2 1M capture as dump", _capture_as_dump(CAPTURES / "stream2-eiger1m-bslz4.cbors.gz", d / "s2.cbors", "raw")),
            ("pcap capture as dump", _capture_as_dump(CAPTURES / "pcap-zmq.cbors", d / "pcap.cbors", "PCAP")),
            (f"synth STINS 2048x2048 u16 bslz4 x{nsynth}", _synth_dump(d / "synth-bs.cbors", nsynth, "bslz4")),
            (f"synth STINS 2048x2048 u16 raw x{nsynth}", _synth_dump(d / "synth-raw.cbors", nsynth, "none")),
        ]
        for name, path in cases:
            rows.append(bench(name, path, pairs))
    print(f"\n{'case':40s} {'events':>7s} {'MB':>8s} {'events/s':>10s} {'MB/s':>8s} {'replay/bare-cbor2':>18s}")
    for r in rows:
        print(f"{r['name']:40s} {r['events']:7d} {r['MB']:8.1f} {r['ev/s']:10.0f} {r['MB/s']:8.0f} {r['ratio']:18.2f}")
    print(f"\n(median of {pairs} interleaved pairs; peer = bare cbor2 decode of the same file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
