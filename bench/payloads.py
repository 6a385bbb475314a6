"""Payload of the pipeline benchmark, the same for this project and for dranspose 0.2.0 (it
imports nothing from either): the worker parses the STINS JSON header of every image and
returns a small dict; the reducer keeps the latency source -> ``process_result`` and, at
``finish``, writes what it saw to ``$BENCH_OUT/<uuid>.json`` (written whole, then renamed).

The source stamps its send time into the header (``"t"``), so latency is measured on one clock
(every process runs on this machine). Where the event says when the ingester read its frame
(``event.created_at``; dranspose 0.2.0's events do not), the latency ingester -> reducer is kept
too, and per result the monotonic clock at its ``process_result`` and its worker (the clock
``bench/sched_trace.py`` lines the kernel's scheduler events up with).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any


def _bytes(frame: Any) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)


class BenchWorker:
    """Parses the STINS header; returns frame number, shape and the times of the source's send, the ingester's read and this call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        stream = event.streams.get("det")
        if stream is None or not stream.frames:
            return None
        header = json.loads(_bytes(stream.frames[0]))
        if header.get("htype") != "image":
            return None
        created = getattr(event, "created_at", None)
        return {"frame": header["frame"], "shape": header["shape"], "t": header.get("t"), "tw": time.time(),
                "ti": created.timestamp() if created is not None else None}


class BenchReducer:
    """Collects per-result latency; ``finish`` writes the summary file."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.latency: list[float] = []
        self.ingest_latency: list[float] = []  # ingester read -> process_result
        self.split: list[tuple[float, ...]] = []  # source -> [ingester read ->] process_event -> process_result
        self.arrived: list[float] = []  # time.monotonic() at each process_result (for a scheduler trace's clock)
        self.workers: list[str] = []  # the worker of each result
        self.results = 0
        self.publish: dict[str, Any] = {"results": 0}

    def process_result(self, result: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> None:
        payload = result.payload
        if not isinstance(payload, dict):
            return
        self.results += 1
        t = payload.get("t")
        if t is not None:
            now = time.time()
            self.arrived.append(time.monotonic())
            self.workers.append(str(getattr(result, "worker", "")))
            self.latency.append(now - t)
            ti, tw = payload.get("ti"), payload["tw"]
            if ti is not None:
                self.ingest_latency.append(now - ti)
                self.split.append((ti - t, tw - ti, now - tw))
            else:
                self.split.append((tw - t, now - tw))

    def finish(self, parameters: Any = None, *args: Any, **kwargs: Any) -> None:
        self.publish["results"] = self.results
        out = os.environ.get("BENCH_OUT")
        if not out:
            return
        path = os.path.join(out, f"{uuid.uuid4().hex}.json")
        summary = {"finished": time.time(), "results": self.results, "latency": self.latency, "ingest_latency": self.ingest_latency,
                   "split": self.split, "arrived": self.arrived, "workers": self.workers}
        # json.dumps, not json.dump: dump to a file takes the pure-Python encoder, 2x the CPU
        # (0.4 s for a 54,000-event paced scan), which the scan's CPU per event to the finish counts
        text = json.dumps(summary)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
