"""Trigger maps and sequences compiled into a list of events (pure, no I/O).

Input forms (COMPAT §3):
- a map ``{stream: [entry, ...]}``, entry = ``None`` (no frame of the stream in this event),
  ``[]`` (a frame is consumed and discarded) or a list of virtual workers
  (``VirtualWorker`` or ``{"tags": [...], "constraint": int | None}``);
- a sequence ``{"parts": {name: map}, "sequence": [name, ...]}``: each occurrence of a part has
  its own constraint namespace; streams missing from a part get ``None``.
With ``all_wrap`` a start event (0) and an end event (N+1) are added in which every stream's
frame goes to every worker that has one of the tags used in the map (broadcast).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from dranspose.errors import MappingError
from dranspose.protocol import GENERIC_WORKER, VirtualWorker

# Caps of one map or sequence (the controller answers 400 naming the cap). A compiled event
# costs a few hundred bytes: the default bounds the controller near 1 GB.
MAX_EVENTS = int(os.environ.get("DRANSPOSE_MAX_EVENTS", 4_000_000))
MAX_MAP_BYTES = int(os.environ.get("DRANSPOSE_MAX_MAP_BYTES", 32 * 1024 * 1024))  # < the body limit

ConstraintKey = tuple[int, int]  # (occurrence in the sequence, user constraint)


class Slot(NamedTuple):
    """A resolved virtual worker: all workers with ``tags`` (broadcast) or the one bound to
    ``constraint`` within its namespace. Immutable; a tuple, so a map of a million distinct
    constraints builds its slots quickly."""

    tags: frozenset[str]
    constraint: ConstraintKey | None


# Per event: stream -> slots (an empty tuple: the frame is discarded). Streams with no frame
# in the event are absent.
Event = dict[str, tuple[Slot, ...]]


class SourceText(bytes):
    """A compiled map's source document (``{"parts": ..., "sequence": ...}``) kept as its UTF-8
    JSON text, not parsed: a long legacy map's parsed body costs ~450 B of Python objects an
    event, each walked by the collector between scans; its text ~47 B. Readers parse it when
    they need the value (``json.loads``)."""


def legacy_source_text(body: bytes) -> SourceText | None:
    """The source document of a legacy map whose body was the JSON text ``body`` (the body as
    sent, spliced in); None when ``body`` is not plain UTF-8 JSON text (a byte-order mark, a
    NUL among its first bytes, bytes that are not strict UTF-8: ``json.loads`` reads such
    bodies in other encodings or leniently, so their text cannot be spliced as it is)."""
    if body.startswith(b"\xef\xbb\xbf") or b"\x00" in body[:4]:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return SourceText(b'{"parts":{"main":' + body + b'},"sequence":["main"]}')


@dataclass
class CompiledMap:
    streams: tuple[str, ...]
    events: list[Event]
    source: Any = field(default_factory=dict)  # the request as given (a value, or SourceText), for GET

    def __len__(self) -> int:
        return len(self.events)

    def tag_sets(self) -> set[frozenset[str]]:
        return {slot.tags for ev in self.events for slots in ev.values() for slot in slots}

    def min_workers(self) -> int:
        """Real workers the map needs: the most distinct constraints any one event uses."""
        most = 0
        for ev in self.events:
            if most and len(ev) == 1:
                (slots,) = ev.values()
                if len(slots) < 2:
                    continue  # one stream, one slot: one constraint at most (the common event)
            distinct = {slot.constraint for slots in ev.values() for slot in slots if slot.constraint is not None}
            most = max(most, len(distinct))
        return most

    def frames_per_stream(self) -> dict[str, int]:
        counts = dict.fromkeys(self.streams, 0)
        for ev in self.events:
            for stream in ev:
                counts[stream] += 1
        return counts


@dataclass(frozen=True, slots=True)
class _Where:
    """Where an entry is, formatted only when an error is raised."""

    part: str
    stream: str
    index: int

    def __str__(self) -> str:
        return f"part {self.part!r} stream {self.stream!r} entry {self.index}"


class _SlotParser:
    """Turns raw entries into interned slot tuples; a map of many events repeats the same few
    virtual workers, so parsing and memory are paid once per distinct entry.

    Slots are interned (one slot is one object while the parser lives: the scan compares
    them by identity), each with its one-slot tuple. The common entry, one ``{"tags": [...],
    "constraint": int}`` object whose tags were seen before, takes a short path: one lookup
    by (tags, (occurrence, constraint)) gives that tuple (a map of a million distinct
    constraints misses every time, so the path holds no cache of its own); everything else, and
    every first sight of tags, takes the full checks. ``where`` is ``(part, stream, index)``,
    formatted only when an error is raised."""

    def __init__(self) -> None:
        self._slots: dict[tuple[frozenset[str], ConstraintKey | None], tuple[Slot]] = {}  # key -> (slot,)
        self._entries: dict[tuple[Slot, ...], tuple[Slot, ...]] = {}
        self._tags: dict[tuple[Any, ...], frozenset[str]] = {}

    def _tag_set(self, tags: tuple[Any, ...], raw: Any, where: tuple[str, str, int]) -> frozenset[str]:
        try:
            known = self._tags.get(tags)
        except TypeError:  # an unhashable tag (a list, an object): refused below
            known = None
        if known is None:
            if not all(type(t) is str for t in tags):
                raise MappingError(f"{_Where(*where)}: invalid virtual worker {raw!r}: tags must be a list of strings")
            known = self._tags[tags] = frozenset(tags)
        return known

    def worker(self, raw: Any, occurrence: int, where: tuple[str, str, int]) -> Slot:
        return self._single(raw, occurrence, where)[0]

    def _single(self, raw: Any, occurrence: int, where: tuple[str, str, int]) -> tuple[Slot]:
        """The interned one-slot tuple of the virtual worker ``raw``."""
        if type(raw) is dict and len(raw) == 2:  # the short path: {"tags": [...], "constraint": int}
            given, constraint = raw.get("tags"), raw.get("constraint")
            if type(given) is list and type(constraint) is int:
                try:
                    tags = self._tags.get(tuple(given))
                except TypeError:  # an unhashable tag: the full checks say what is wrong
                    tags = None
                if tags is not None:
                    return self._interned((tags, (occurrence, constraint)))
        return self._interned(self._worker(raw, occurrence, where))

    def _interned(self, key: tuple[frozenset[str], ConstraintKey | None]) -> tuple[Slot]:
        single = self._slots.get(key)
        if single is not None:
            return single
        slot = tuple.__new__(Slot, key)  # Slot(*key) without the generated __new__'s Python frame
        made: tuple[Slot] = self._entries.setdefault((slot,), (slot,))  # type: ignore[assignment]
        self._slots[key] = made
        return made

    def tags_used(self) -> set[str]:
        """Every tag of every slot made so far (each slot is in the events it was made for)."""
        return {t for tags, _constraint in self._slots for t in tags}

    def _worker(self, raw: Any, occurrence: int, where: tuple[str, str, int]) -> tuple[frozenset[str], ConstraintKey | None]:
        """The full checks of a virtual worker; its slot's key (tags, (occurrence, constraint))."""
        tags: frozenset[str]
        if type(raw) is not dict and isinstance(raw, VirtualWorker):
            tags, constraint = frozenset(raw.tags), raw.constraint
        elif type(raw) is dict or isinstance(raw, Mapping):  # the exact-type test skips the slow ABC check
            given = raw.get("tags", (GENERIC_WORKER,))
            constraint = raw.get("constraint")
            if isinstance(given, str):
                given = (given,)
            if type(given) not in (list, tuple, set, frozenset):
                raise MappingError(f"{_Where(*where)}: invalid virtual worker {raw!r}: tags must be a list of strings")
            tags = self._tag_set(tuple(given), raw, where)
            if constraint is not None and (isinstance(constraint, bool) or not isinstance(constraint, int)):
                raise MappingError(f"{_Where(*where)}: invalid virtual worker {raw!r}: constraint must be an integer or null")
            if len(raw) > ("tags" in raw) + ("constraint" in raw):
                extra = set(raw) - {"tags", "constraint"}
                raise MappingError(f"{_Where(*where)}: invalid virtual worker {raw!r}: unknown keys {sorted(extra)}")
        else:
            raise MappingError(f"{_Where(*where)}: a virtual worker must be an object with tags/constraint, got {raw!r}")
        return tags, None if constraint is None else (occurrence, int(constraint))

    def entry(self, raw: Any, occurrence: int, where: tuple[str, str, int]) -> tuple[Slot, ...] | None:
        if raw is None:
            return None
        if type(raw) is list and len(raw) == 1:
            return self._single(raw[0], occurrence, where)
        if not isinstance(raw, (list, tuple)):
            raise MappingError(f"{_Where(*where)}: an entry must be null, [] or a list of virtual workers, got {raw!r}")
        slots = tuple(dict.fromkeys(self.worker(w, occurrence, where) for w in raw))  # drop duplicates
        return self._entries.setdefault(slots, slots)


def _part_length(part: Mapping[str, Any], name: str) -> int:
    if not isinstance(part, Mapping) or not part:
        raise MappingError(f"part {name!r} must be a non-empty object {{stream: [entries]}}")
    lengths = set()
    for stream, entries in part.items():
        if not isinstance(stream, str) or not stream:
            raise MappingError(f"part {name!r}: stream names must be non-empty strings, got {stream!r}")
        if not isinstance(entries, (list, tuple)):
            raise MappingError(f"part {name!r}, stream {stream!r}: expected a list of entries")
        lengths.add(len(entries))
    if len(lengths) != 1:
        raise MappingError(f"part {name!r}: all streams need the same number of entries, got {sorted(lengths)}")
    return lengths.pop()


def compile_sequence(
    parts: Mapping[str, Mapping[str, Sequence[Any]]], sequence: Sequence[str], all_wrap: bool = True,
    max_events: int = MAX_EVENTS,
) -> CompiledMap:
    """Compile parts played in ``sequence`` order into one event list (MappingError when it
    would have more than ``max_events`` events: checked before anything is built)."""
    if not isinstance(sequence, (list, tuple)) or not sequence:
        raise MappingError("sequence must be a non-empty list of part names")
    lengths = {name: _part_length(part, name) for name, part in parts.items()}
    for name in sequence:
        if not isinstance(name, str) or name not in parts:
            raise MappingError(f"sequence names unknown part {name!r}; parts are {sorted(parts)}")
    total = sum(lengths[name] for name in sequence) + (2 if all_wrap else 0)
    if total > max_events:
        raise MappingError(
            f"the sequence expands to {total} events, more than the limit of {max_events} (DRANSPOSE_MAX_EVENTS)"
        )
    streams = tuple(dict.fromkeys(s for name in sequence for s in parts[name]))
    parser = _SlotParser()
    events: list[Event] = []
    for occurrence, name in enumerate(sequence):
        part = parts[name]
        for i in range(lengths[name]):
            event: Event = {}
            for stream, entries in part.items():
                slots = parser.entry(entries[i], occurrence, (name, stream, i))
                if slots is not None:
                    event[stream] = slots
            events.append(event)
    if all_wrap:
        tags = parser.tags_used() or {GENERIC_WORKER}
        broadcast = tuple(Slot(frozenset({t}), None) for t in sorted(tags))
        wrap: Event = {stream: broadcast for stream in streams}
        events = [dict(wrap), *events, dict(wrap)]
    return CompiledMap(streams=streams, events=events)


def compile_mapping(mapping: Mapping[str, Sequence[Any]], all_wrap: bool = True, body: bytes | None = None) -> CompiledMap:
    """Compile a plain trigger map ``{stream: [entries]}`` (the legacy ``/mapping`` body);
    ``body``: the JSON text ``mapping`` was parsed from, kept as the source instead of the
    parsed value where it can be (:func:`legacy_source_text`)."""
    if not isinstance(mapping, Mapping):
        raise MappingError("a trigger map must be an object {stream: [entries]}")
    cmap = compile_sequence({"main": mapping}, ["main"], all_wrap)
    text = legacy_source_text(body) if body is not None else None
    cmap.source = text if text is not None else {"parts": {"main": dict(mapping)}, "sequence": ["main"]}
    return cmap


def compile_request(body: Any, all_wrap: bool = True) -> CompiledMap:
    """Compile a ``/sequence`` body (``{"parts", "sequence"}``)."""
    if not isinstance(body, Mapping) or "parts" not in body or "sequence" not in body:
        raise MappingError('a sequence must be an object {"parts": {...}, "sequence": [...]}')
    parts = body["parts"]
    if not isinstance(parts, Mapping) or not parts:
        raise MappingError('"parts" must be a non-empty object of trigger maps')
    cmap = compile_sequence(parts, body["sequence"], all_wrap)
    cmap.source = {"parts": dict(parts), "sequence": list(body["sequence"])}
    return cmap


def slot_matches(slot: Slot, worker_tags: Iterable[str]) -> bool:
    """True when a worker with ``worker_tags`` can serve ``slot``."""
    return slot.tags <= frozenset(worker_tags)
