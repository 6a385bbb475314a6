"""Assignment batches on the Redis assignment stream (controller -> ingesters and workers).

Two JSON shapes, both with ``"mapping"`` (the uuid):

- single events: ``{"events": [[event, {stream: [worker, ...]}], ...]}`` (broadcasts,
  discards, events with several virtual workers);
- a run (the common case, a few bytes per event): ``{"first": e0, "workers": [names],
  "sets": [[streams], ...], "t": [worker index per event], "s": [stream-set index per event]}``
  (``"s"`` is left out when every event has stream set 0): event ``e0 + i`` goes to
  ``workers[t[i]]`` on every stream of ``sets[s[i]]``.

Decoding validates the shape and raises :class:`ProtocolError` on anything else.
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Iterator

import numpy as np

from dranspose.core.pairing import Route
from dranspose.core.runs import Assignment, FastRun, Run
from dranspose.errors import ProtocolError
from dranspose.transport.jsonio import dumps_compact


def _index(values: np.ndarray, bound: int) -> tuple[list[int], list[int] | None]:
    """(sorted distinct values, index of each value among them) of ``values``, integers in
    ``0 .. bound - 1``; the index is None when there is one distinct value (no list needed to
    say it). Short runs (what credits release one report at a time) in plain Python, where
    numpy's cost per call dominates; longer ones counted and looked up in arrays of ``bound``
    (no sort)."""
    if len(values) <= 128:
        flat = values.tolist()
        distinct = sorted(set(flat))
        if len(distinct) <= 1:
            return distinct, None
        position = {v: i for i, v in enumerate(distinct)}
        return distinct, [position[v] for v in flat]
    used = np.flatnonzero(np.bincount(values, minlength=bound))
    if len(used) == 1:
        return used.tolist(), None
    index_of = np.empty(bound, dtype=np.int64)
    index_of[used] = np.arange(len(used))
    return used.tolist(), index_of[values].tolist()


def encode(mapping: str, run: Run) -> bytes:
    """Compact JSON of one batch (UTF-8)."""
    if isinstance(run, FastRun):
        used, t = _index(run.target, len(run.workers))
        sets_used, s = _index(run.sset, len(run.stream_sets))
        body: dict[str, Any] = {
            "mapping": mapping,
            "first": run.first,
            "workers": [run.workers[w] for w in used],
            "sets": [list(run.stream_sets[k]) for k in sets_used],
            "t": [0] * len(run) if t is None else t,
        }
        if s is not None:
            body["s"] = s
        return dumps_compact(body)
    events = [[e, {st: list(w) for st, w in targets.items()}] for e, targets in run]
    return dumps_compact({"mapping": mapping, "events": events})


def _run_arrays(batch: dict[str, Any]) -> tuple[int, list[str], list[list[str]], np.ndarray, np.ndarray]:
    try:
        first = int(batch["first"])
        workers = [str(w) for w in batch["workers"]]
        sets = [[str(x) for x in s] for s in batch["sets"]]
        t = np.asarray(batch["t"], dtype=np.int64).reshape(-1)
        s = np.asarray(batch["s"], dtype=np.int64).reshape(-1) if "s" in batch else np.zeros(len(t), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"bad assignment run: {exc}") from None
    if len(s) != len(t) or (len(t) and (t.min() < 0 or t.max() >= len(workers) or s.min() < 0 or s.max() >= len(sets))):
        raise ProtocolError("assignment run indices out of range")
    return first, workers, sets, t, s


def check_run(batch: dict[str, Any]) -> None:
    """Raise :class:`ProtocolError` unless ``batch`` is a well-formed run."""
    _run_arrays(batch)


def decode(batch: dict[str, Any]) -> Iterator[Assignment]:
    """Every event of one batch as (event, {stream: workers})."""
    if "first" in batch:
        first, workers, sets, t, s = _run_arrays(batch)
        names = [(w,) for w in workers]
        for i, (w, k) in enumerate(zip(t.tolist(), s.tolist())):
            yield first + i, {stream: names[w] for stream in sets[k]}
        return
    try:
        for event, targets in batch["events"]:
            yield int(event), {str(st): tuple(str(w) for w in ws) for st, ws in targets.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"bad assignment batch: {exc}") from None


def _whole(targets: dict[str, tuple[str, ...]], receivers: tuple[str, ...]) -> bool:
    """Whether each of ``receivers`` gets no stream of the event but the one it receives."""
    if len(targets) == 1:
        return True
    for w in receivers:
        if sum(1 for ws in targets.values() if w in ws) > 1:
            return False
    return True


def routes_by_stream(events: Iterable[Assignment], streams: Collection[str]) -> dict[str, list[Route]]:
    """The routes of each of ``streams`` that has any, in the order of ``events``."""
    out: dict[str, list[Route]] = {}
    for event, targets in events:
        for stream, receivers in targets.items():
            if stream in streams:
                out.setdefault(stream, []).append((event, receivers, _whole(targets, receivers)))
    return out


def for_streams(batch: dict[str, Any], streams: Collection[str]) -> dict[str, list[Route]]:
    """The routes (event, workers, whole) of one batch for each of ``streams`` that has any,
    in event order: what an ingester serving ``streams`` needs (a run: without a dict per
    event; an event of a run goes to one worker on every stream of its set, so it is whole
    there when its set has one stream)."""
    if "first" not in batch:
        return routes_by_stream(decode(batch), streams)
    out: dict[str, list[Route]] = {}
    first, workers, sets, t, s = _run_arrays(batch)
    names = [(w,) for w in workers]
    single = np.array([len(set(members)) == 1 for members in sets], dtype=bool)  # per stream set: whole
    for stream in streams:
        in_set = np.array([stream in members for members in sets], dtype=bool)
        if not in_set.any():
            continue
        mine = np.flatnonzero(in_set[s])
        if len(mine):
            whole = single[s[mine]].tolist()
            out[stream] = list(zip((mine + first).tolist(), map(names.__getitem__, t[mine].tolist()), whole))
    return out


def for_worker(batch: dict[str, Any], name: str) -> Iterator[tuple[int, frozenset[str]]]:
    """The events of one batch that involve worker ``name``, with its streams."""
    if "first" in batch:
        first, workers, sets, t, s = _run_arrays(batch)
        if name not in workers:
            return
        mine = np.flatnonzero(t == workers.index(name))
        frozen = [frozenset(x) for x in sets]
        for i, k in zip(mine.tolist(), s[mine].tolist()):
            yield first + i, frozen[k]
        return
    for event, targets in decode(batch):
        streams = frozenset(st for st, ws in targets.items() if name in ws)
        if streams:
            yield event, streams
