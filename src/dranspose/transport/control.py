"""Every control and completion message between components, declared, encoded and decoded here.

Three Redis streams carry them (keys in :mod:`dranspose.store.keys`):

* ``updates`` (field ``msg``): controller announcements, JSON with a ``type``:
  :class:`MappingAnnounced`, :class:`ParametersChanged`, :class:`Finish`, :class:`Stop`;
  the current mapping key holds a :class:`MappingAnnounced` too (without ``type``).
* ``assigned:<mapping>`` (field ``a``): :class:`AssignmentBatch` ahead of the data (single
  events), :class:`AssignmentRun` (the compact run format of :mod:`dranspose.transport.assignments`)
  and :class:`RerouteBatch` when a worker died.
* ``done:<mapping>`` (field ``m``): completion reports told apart by their sender key:
  :class:`WorkerReport` (``w``), :class:`IngesterReport` (``i``), :class:`ReducerReport` (``r``).

The wire stays compact JSON (one-letter keys where volume matters). Decoding validates types
and shapes: anything malformed or hostile raises :class:`ControlMessageError` (never
``KeyError``/``TypeError``), so a receiver counts and logs it and carries on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Collection, Iterator, Literal, Union

from dranspose.backend import first_bad_count
from dranspose.errors import ControlMessageError, ProtocolError
from dranspose.core.pairing import Route
from dranspose.core.scan import pairs_by_worker
from dranspose.core.triggermap import SourceText
from dranspose.transport import assignments
from dranspose.transport.jsonio import dumps_compact, join_objects, loads_checked

UPDATE_FIELD = "msg"
ASSIGNED_FIELD = "a"
REPORT_FIELD = "m"

Targets = dict[str, tuple[str, ...]]  # stream -> worker names (empty: discard)


# ---- validation helpers (raise ControlMessageError with the field name)
def _loads(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        obj = loads_checked(raw)  # written as UTF-8 by the encoders here; read without encoding sniffing
    except (ValueError, TypeError, RecursionError) as exc:
        raise ControlMessageError(f"{what}: not JSON: {str(raw)[:80]!r} ({exc})") from None
    if not isinstance(obj, dict):
        raise ControlMessageError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _str(obj: dict[str, Any], key: str, what: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ControlMessageError(f"{what}: {key!r} must be a string, got {value!r:.80}")
    return value


MAX_INT = (1 << 63) - 1  # counts and event numbers fit int64 (the scan core keeps them in arrays)


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0 or value > MAX_INT:
        raise ControlMessageError(f"{what}: expected a non-negative 64-bit integer, got {value!r:.80}")
    return value


def _float(value: Any, what: str) -> float:
    if type(value) is float and 0.0 <= value < math.inf:  # the common case, checked first
        return value
    if type(value) not in (int, float) or not value >= 0 or value == math.inf:
        raise ControlMessageError(f"{what}: expected a non-negative number, got {value!r:.80}")
    return float(value)


def _ints(value: Any, what: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ControlMessageError(f"{what}: expected a list of event numbers, got {type(value).__name__}")
    bad = first_bad_count(value)  # one compiled loop
    if bad >= 0:
        raise ControlMessageError(f"{what}: bad event number {value[bad]!r:.80}")
    return value


def _pairs(value: Any, what: str) -> list[tuple[str, int]]:
    """[[worker, event], ...] -> [(worker, event), ...]"""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ControlMessageError(f"{what}: expected a list of [worker, event] pairs")
    out = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ControlMessageError(f"{what}: bad [worker, event] pair {pair!r:.80}")
        out.append((pair[0], _int(pair[1], what)))
    return out


def _received(obj: dict[str, Any], what: str) -> dict[str, list[int]] | None:
    """A reducer report's results by worker: ``rx`` ({worker: [event, ...]}) or the older
    ``ev`` ([[worker, event], ...]); None when it has neither."""
    rx, ev = obj.get("rx"), obj.get("ev")
    if rx is not None:
        if not isinstance(rx, dict):
            raise ControlMessageError(f"{what} rx: expected {{worker: [event, ...]}}")
        return {str(w): _ints(events, f"{what} rx") for w, events in rx.items()}
    return None if ev is None else pairs_by_worker(_pairs(ev, f"{what} ev"))


# ---- controller announcements (updates stream)
@dataclass(frozen=True)
class MappingAnnounced:
    """A new scan: its uuid, the map as posted, and what components prepare for it."""

    kind: ClassVar[str] = "mapping"
    uuid: str
    source: Any = None
    n_workers: int = 1
    dump_prefix: str | None = None
    frames_per_stream: dict[str, int] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        out = {
            "uuid": self.uuid,
            "n_workers": self.n_workers,
            "dump_prefix": self.dump_prefix,
            "frames_per_stream": self.frames_per_stream,
        }
        if self.source is not None:  # announcements name the map without repeating it
            out["source"] = self.source
        return out

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> "MappingAnnounced":
        what = "mapping announcement"
        frames = obj.get("frames_per_stream") or {}
        if not isinstance(frames, dict) or not all(isinstance(k, str) and type(v) is int for k, v in frames.items()):
            raise ControlMessageError(f"{what}: frames_per_stream must map stream names to integers")
        n = obj.get("n_workers", 1)
        if type(n) is not int:
            raise ControlMessageError(f"{what}: n_workers must be an integer, got {n!r:.80}")
        return cls(_str(obj, "uuid", what), obj.get("source"), n, _str(obj, "dump_prefix", what, True), frames)


@dataclass(frozen=True)
class ParametersChanged:
    """A parameter was set: components reload parameters from Redis."""

    kind: ClassVar[str] = "parameters"
    name: str

    def fields(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> "ParametersChanged":
        return cls(_str(obj, "name", "parameters announcement"))


@dataclass(frozen=True)
class Finish:
    """Every event is done: ``target`` ("workers" or "reducer") runs ``finish`` now."""

    kind: ClassVar[str] = "finish"
    uuid: str
    target: Literal["workers", "reducer"] = "workers"

    def fields(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "target": self.target}

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> "Finish":
        target = obj.get("target", "workers")
        if target not in ("workers", "reducer"):
            raise ControlMessageError(f"finish: target must be 'workers' or 'reducer', got {target!r:.80}")
        return cls(_str(obj, "uuid", "finish"), target)


@dataclass(frozen=True)
class Stop:
    """The scan was stopped: workers drop partial events and report them cancelled."""

    kind: ClassVar[str] = "stop"
    uuid: str

    def fields(self) -> dict[str, Any]:
        return {"uuid": self.uuid}

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> "Stop":
        return cls(_str(obj, "uuid", "stop"))


Update = Union[MappingAnnounced, ParametersChanged, Finish, Stop]
_UPDATES: dict[str, Any] = {c.kind: c for c in (MappingAnnounced, ParametersChanged, Finish, Stop)}


def encode_update(msg: Update) -> bytes:
    """The ``msg`` field of an updates-stream entry."""
    return dumps_compact({"type": msg.kind, **msg.fields()})


def decode_update(raw: bytes | str) -> Update:
    obj = _loads(raw, "update")
    cls = _UPDATES.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise ControlMessageError(f"update: unknown type {obj.get('type')!r:.80}")
    return cls.from_fields(obj)  # type: ignore[no-any-return]


def source_json(source: Any) -> bytes:
    """The JSON text of a compiled map's source: its text where it was kept as text
    (:class:`SourceText`), else the value written compact."""
    return bytes(source) if isinstance(source, SourceText) else dumps_compact(source)


def encode_mapping(msg: MappingAnnounced) -> bytes:
    """The current-mapping key's value (the announcement without ``type``); a source kept as
    text is spliced in as it is (the same document as writing its value)."""
    fields = msg.fields()
    if "source" not in fields:
        return dumps_compact(fields)
    source = fields.pop("source")  # the last member
    return join_objects(dumps_compact(fields), b'{"source":' + source_json(source) + b"}")


def decode_mapping(raw: bytes | str) -> MappingAnnounced:
    return MappingAnnounced.from_fields(_loads(raw, "current mapping"))


# ---- assignments (assigned stream)
@dataclass(frozen=True)
class AssignmentBatch:
    """Events assigned ahead of the data, in order: (event, {stream: workers})."""

    kind: ClassVar[str] = "assigned"
    mapping: str
    events: list[tuple[int, Targets]]

    def for_streams(self, streams: Collection[str]) -> dict[str, list[Route]]:
        """The routes of each of ``streams`` that has any (see :func:`assignments.for_streams`)."""
        return assignments.routes_by_stream(self.events, streams)

    def for_worker(self, name: str) -> Iterator[tuple[int, frozenset[str]]]:
        """The events that involve worker ``name``, with its streams."""
        for event, targets in self.events:
            streams = frozenset(stream for stream, workers in targets.items() if name in workers)
            if streams:
                yield event, streams


@dataclass(frozen=True)
class AssignmentRun:
    """A run of events assigned in one go, kept in its compact wire form (validated on
    decoding); ``events`` expands it, ``for_worker`` picks one worker's events cheaply."""

    kind: ClassVar[str] = "assigned"
    mapping: str
    body: dict[str, Any]

    @property
    def events(self) -> list[tuple[int, Targets]]:
        return list(assignments.decode(self.body))

    def for_streams(self, streams: Collection[str]) -> dict[str, list[Route]]:
        return assignments.for_streams(self.body, streams)

    def for_worker(self, name: str) -> Iterator[tuple[int, frozenset[str]]]:
        return assignments.for_worker(self.body, name)


def encode_assignment(mapping: str, events: list[tuple[int, Targets]]) -> bytes:
    return dumps_compact({"mapping": mapping, "events": [[e, {s: list(w) for s, w in t.items()}] for e, t in events]})


def decode_assignment(raw: bytes | str) -> AssignmentBatch | AssignmentRun | RerouteBatch:
    what = "assignment batch"
    obj = _loads(raw, what)
    mapping = _str(obj, "mapping", what)
    if "reroute" in obj:
        return _decode_reroute(obj, mapping)
    if "first" in obj:
        try:
            assignments.check_run(obj)
        except ProtocolError as exc:
            raise ControlMessageError(f"{what}: {exc}") from None
        return AssignmentRun(mapping, obj)
    items = obj.get("events")
    if not isinstance(items, list):
        raise ControlMessageError(f"{what}: 'events' must be a list")
    events: list[tuple[int, Targets]] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict)):
            raise ControlMessageError(f"{what}: bad entry {item!r:.80}")
        targets: Targets = {}
        for stream, workers in item[1].items():
            if not isinstance(workers, list) or not all(isinstance(w, str) for w in workers):
                raise ControlMessageError(f"{what}: stream {stream!r:.40} needs a list of worker names")
            targets[stream] = tuple(workers)
        events.append((_int(item[0], what), targets))
    return AssignmentBatch(mapping, events)


@dataclass(frozen=True)
class RerouteBatch:
    """A dead worker's unfinished events, bound anew: (event, {stream: new workers} for the
    streams it had, workers added). Ingesters replace routes they have not used yet and report
    the others undeliverable for the added workers; the added workers expect the events."""

    kind: ClassVar[str] = "assigned"
    mapping: str
    dead: str
    events: list[tuple[int, Targets, tuple[str, ...]]]


def encode_reroute(mapping: str, dead: str, events: list[tuple[int, Targets, tuple[str, ...]]]) -> bytes:
    return dumps_compact(
        {"mapping": mapping, "reroute": dead, "events": [[e, {s: list(w) for s, w in t.items()}, list(a)] for e, t, a in events]}
    )


def _names(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ControlMessageError(f"{what}: expected a list of worker names, got {value!r:.80}")
    return tuple(value)


def _decode_reroute(obj: dict[str, Any], mapping: str) -> RerouteBatch:
    what = "reroute batch"
    dead = _str(obj, "reroute", what)
    items = obj.get("events")
    if not isinstance(items, list):
        raise ControlMessageError(f"{what}: 'events' must be a list")
    events: list[tuple[int, Targets, tuple[str, ...]]] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], dict)):
            raise ControlMessageError(f"{what}: bad entry {item!r:.80}")
        targets = {str(stream): _names(workers, what) for stream, workers in item[1].items()}
        events.append((_int(item[0], what), targets, _names(item[2], what)))
    return RerouteBatch(mapping, dead, events)


# ---- completion reports (done stream)
@dataclass(slots=True)
class WorkerReport:
    """Events a worker completed (``done``), which of them produced a result (``results``),
    its cumulative result count (``sent``), events cancelled after a stop, and ``finished``
    once its ``finish`` ran. Not frozen: the controller builds one per report it reads, and a
    frozen dataclass takes four times as long to build (1.5 against 0.35 us); treat it as
    read-only all the same."""

    worker: str
    done: list[int] = field(default_factory=list)
    sent: int = 0
    finished: bool = False
    cancelled: list[int] = field(default_factory=list)
    results: list[int] | None = None  # None: an older worker that does not say
    # cumulative counters the controller sizes the worker's credits from (None: not given):
    # events processed, seconds busy, payload bytes, seconds waiting with no assigned event
    n: int | None = None
    busy: float | None = None
    nbytes: int | None = None
    starved: float | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"w": self.worker, "done": self.done, "sent": self.sent}
        if self.n is not None:
            out["n"] = self.n
        if self.busy is not None:
            out["busy"] = self.busy
        if self.nbytes is not None:
            out["bytes"] = self.nbytes
        if self.starved is not None:
            out["starved"] = self.starved
        if self.finished:
            out["fin"] = True
        if self.cancelled:
            out["cancelled"] = self.cancelled
        if self.results is not None:
            # every event sent a result (the common case): said in one word, not a second list
            out["res"] = "all" if self.results == self.done and self.results else self.results
        return out


@dataclass(frozen=True)
class IngesterReport:
    """(worker, event) parts an ingester could not deliver: those events failed."""

    ingester: str
    lost: list[tuple[str, int]] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        return {"i": self.ingester, "lost": [list(p) for p in self.lost]}


@dataclass(frozen=True)
class ReducerReport:
    """The reducer's cumulative result counts per worker, the results it received since its
    previous report (per worker, their event numbers), its process (``instance``: service
    uuid) and ``finished`` once its ``finish`` ran. On the wire ``received`` is ``rx``
    (``{worker: [event, ...]}``); the earlier ``ev`` (``[[worker, event], ...]``) is read too."""

    reducer: str
    processed: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    instance: str | None = None
    received: dict[str, list[int]] | None = None  # None: an older reducer that does not say

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"r": self.reducer, "processed": self.processed}
        if self.finished:
            out["fin"] = True
        if self.instance is not None:
            out["id"] = self.instance
        if self.received is not None:
            out["rx"] = self.received
        return out


Report = Union[WorkerReport, IngesterReport, ReducerReport]


def encode_report(msg: Report) -> bytes:
    """The ``m`` field of a done-stream entry."""
    return dumps_compact(msg.fields())


_WHAT = "completion report"
_WHAT_OF = {key: f"{_WHAT} {key}" for key in ("done", "sent", "cancelled", "res", "n", "busy", "bytes", "starved")}


def decode_report(raw: bytes | str) -> Report:
    what = _WHAT
    obj = _loads(raw, what)
    get = obj.get
    fin = get("fin", False)
    if not isinstance(fin, bool):
        raise ControlMessageError(f"{what}: 'fin' must be a boolean")
    if "w" in obj:  # the controller reads one per worker per batch: no work it can skip
        res, n, busy, nbytes, starved = get("res"), get("n"), get("busy"), get("bytes"), get("starved")
        done = _ints(get("done"), _WHAT_OF["done"])
        return WorkerReport(
            _str(obj, "w", what),
            done,
            _int(get("sent", 0), _WHAT_OF["sent"]),
            fin,
            _ints(get("cancelled"), _WHAT_OF["cancelled"]),
            None if res is None else done if res == "all" else _ints(res, _WHAT_OF["res"]),  # "all": the same list
            None if n is None else _int(n, _WHAT_OF["n"]),
            None if busy is None else _float(busy, _WHAT_OF["busy"]),
            None if nbytes is None else _int(nbytes, _WHAT_OF["bytes"]),
            None if starved is None else _float(starved, _WHAT_OF["starved"]),
        )
    if "i" in obj:
        return IngesterReport(_str(obj, "i", what), _pairs(obj.get("lost"), f"{what} lost"))
    if "r" in obj:
        processed = obj.get("processed") or {}
        if not isinstance(processed, dict):
            raise ControlMessageError(f"{what}: 'processed' must map worker names to counts")
        counts = {str(k): _int(v, f"{what} processed") for k, v in processed.items()}
        return ReducerReport(_str(obj, "r", what), counts, fin, _str(obj, "id", what, True), _received(obj, what))
    raise ControlMessageError(f"{what}: no sender key ('w', 'i' or 'r') in {str(raw)[:80]!r}")
