"""What the controller's status page shows, in one JSON document: ``GET /api/v1/dashboard``.

Read from the scheduler's state at request time: progress with rate and ETA, events/s per
worker over the last minutes (from the scheduler's processed-count history), failed events,
stuck events (in flight for longer than ``stuck_after`` seconds, first seen by this module),
each component's host, pid, version and heartbeat age, errors by component and category, and
the links to the live viewer, the results and the API docs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Query, Request

from dranspose.services.loop_time import describe

SERIES_SECONDS = 300  # the rate chart's span
SERIES_STEP = 2.0  # seconds per point of the rate chart
STUCK_AFTER = 10.0  # seconds in flight before an event is listed as stuck
MAX_LISTED = 50  # failed/stuck event numbers listed


def rate_series(history: list[tuple[float, dict[str, int]]], now: float, seconds: float = SERIES_SECONDS,
                step: float = SERIES_STEP) -> dict[str, Any]:
    """Events/s per worker at ``step`` intervals over the last ``seconds``, from samples
    ``(time, {worker: processed count})`` in time order. A worker absent from a sample (not yet
    started, or gone) contributes no point there; a count going down (restart) gives 0."""
    if len(history) < 2:
        return {"t": [], "workers": {}}
    start = max(history[0][0], now - seconds)
    times: list[float] = []
    t = now
    while t >= start:
        times.append(t)
        t -= step
    times.reverse()
    samples: list[tuple[float, dict[str, int]] | None] = []
    i = 0
    for t in times:  # the last sample at or before t
        while i + 1 < len(history) and history[i + 1][0] <= t:
            i += 1
        samples.append(history[i] if history[i][0] <= t else None)
    workers = sorted({w for _, counts in history for w in counts})
    out: dict[str, list[float | None]] = {w: [] for w in workers}
    ts: list[float] = []
    for k in range(1, len(times)):
        a, b = samples[k - 1], samples[k]
        ts.append(round(times[k] - now, 1))
        for w in workers:
            if a is None or b is None or w not in a[1] or w not in b[1] or b[0] <= a[0]:
                out[w].append(None)
            else:
                out[w].append(round(max(0, b[1][w] - a[1][w]) / (b[0] - a[0]), 2))
    return {"t": ts, "workers": out}


class StuckTracker:
    """First-seen times of in-flight events, to tell stuck ones (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mapping: str | None = None
        self._seen: dict[int, float] = {}

    def update(self, mapping: str | None, pending: dict[int, list[str]], now: float, stuck_after: float) -> list[dict[str, Any]]:
        with self._lock:
            if mapping != self._mapping:
                self._mapping, self._seen = mapping, {}
            self._seen = {e: self._seen.get(e, now) for e in pending}
            stuck = sorted((e for e, t in self._seen.items() if now - t >= stuck_after))
            return [{"event": e, "workers": pending[e], "for_s": round(now - self._seen[e], 1)} for e in stuck[:MAX_LISTED]]

    def count(self, now: float, stuck_after: float) -> int:
        with self._lock:
            return sum(1 for t in self._seen.values() if now - t >= stuck_after)


def _eta(progress: dict[str, Any], started: float | None, history: list[tuple[float, int]], now: float) -> dict[str, Any]:
    total = int(progress.get("total_events", 0))
    done = int(progress.get("completed_events", 0)) + int(progress.get("failed_events", 0))
    rate = None
    recent = [(t, d) for t, d in history if now - t <= 10]
    if len(recent) >= 2 and recent[-1][0] > recent[0][0]:
        rate = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])
    elif started is not None and now > started:
        rate = done / (now - started)
    remaining = max(0, total - done)
    eta = None
    if progress.get("finished"):
        eta = 0.0
    elif rate and rate > 0:
        eta = remaining / rate
    return {"done": done, "total": total, "events_per_s": round(rate, 2) if rate is not None else None,
            "eta_s": round(eta, 1) if eta is not None else None}


def dashboard_router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["status"])
    stuck = StuckTracker()
    done_history: list[tuple[float, int]] = []
    lock = threading.Lock()

    @r.get("/dashboard", summary="Everything the status page shows: progress and ETA, rates, components, errors")
    def dashboard(request: Request, stuck_after: float = Query(default=STUCK_AFTER, ge=0, le=86400)) -> dict[str, Any]:
        sched = request.app.state.scheduler
        sched.refresh_components()
        progress = sched.progress()
        now = time.time()
        with sched.lock:
            comps = {k: {n: dict(st) for n, st in v.items()} for k, v in sched.components.items()}
            history = list(sched.history)
            scan = sched.scan
            pending = {e: sorted(ws) for e, ws in scan.open_events().items()} if scan is not None else {}
            started, finished = sched.scan_started, sched.scan_finished
            lost = {k: list(v) for k, v in sched.lost.items()}
        done = int(progress.get("completed_events", 0)) + int(progress.get("failed_events", 0))
        with lock:
            if done_history and done < done_history[-1][1]:
                done_history.clear()  # a new scan
            done_history.append((now, done))
            del done_history[: max(0, len(done_history) - 120)]
            eta = _eta(progress, started, list(done_history), now)
        stuck_events = stuck.update(progress.get("mapping_uuid"), pending, now, stuck_after)
        components = []
        for kind in ("ingester", "worker", "reducer"):
            for name, st in sorted(comps.get(kind, {}).items()):
                stamp = st.get("time")
                components.append({
                    "kind": kind, "name": name, "host": st.get("host"), "pid": st.get("pid"), "version": st.get("version"),
                    "heartbeat_age_s": round(now - stamp, 2) if isinstance(stamp, (int, float)) else None,
                    "errors": st.get("errors") or {}, "detail": "; ".join(t for t in (_detail(kind, st), describe(st.get("data_loop"))) if t),
                })
        reducer = next(iter(comps.get("reducer", {}).values()), None)
        results = reducer.get("http") if reducer else None
        return {
            "mapping_uuid": progress.get("mapping_uuid"),
            "phase": progress.get("phase", "idle"),
            "finished": bool(progress.get("finished")),
            "progress": {**eta, "in_flight": progress.get("in_flight", 0)},
            "failed": {"count": int(progress.get("failed_events", 0)), "events": list(progress.get("failed", []))[:MAX_LISTED],
                       "by_worker": {w: v[:MAX_LISTED] for w, v in lost.items()}},
            "stuck": {"after_s": stuck_after, "count": stuck.count(now, stuck_after), "events": stuck_events},
            "rates": rate_series(history, history[-1][0] if history else now),
            "components": components,
            "error_count": sum(v for c in components if isinstance(c["errors"], dict)
                               for v in c["errors"].values() if isinstance(v, (int, float))),
            "scan_started": started,
            "scan_finished": finished,
            "links": {
                "viewer": f"{results.rstrip('/')}/viewer" if results else None,
                "results": results,
                "api_docs": "/docs",
                "metrics": "/metrics",
                "logs": "/api/v1/logs",
            },
        }

    return r


def _detail(kind: str, st: dict[str, Any]) -> str:
    if kind == "worker":
        waits = f", {st['assignment_waits']} waited {st.get('assignment_wait_s', 0)} s for their assignment" if st.get("assignment_waits") else ""
        return f"{st.get('processed', 0)} events processed{waits}, tags {','.join(st.get('tags') or [])}"
    if kind == "reducer":
        return f"{st.get('total_processed', 0)} results processed"
    parts = []
    for stream, v in (st.get("stream_stats") or {}).items():
        if isinstance(v, dict):
            parts.append(f"stream {stream} ({v.get('typ')}): {v.get('forwarded', 0)} forwarded, {v.get('malformed', 0)} malformed, "
                         f"{v.get('assignment_wait_s', 0)} s waiting for assignments")
    return "; ".join(parts)
