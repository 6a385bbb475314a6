"""Trigger-map and sequence compilation (COMPAT §3), with hypothesis properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.triggermap import Slot, SourceText, compile_mapping, compile_request
from dranspose.errors import MappingError
from dranspose.protocol import VirtualWorker

G = frozenset({"generic"})


def vw(c: int | None, tags: list[str] | None = None) -> dict[str, Any]:
    return {"tags": tags or ["generic"], "constraint": c}


def test_entries_none_discard_and_workers() -> None:
    cmap = compile_mapping({"a": [[vw(1)], None, []], "b": [None, [vw(2), vw(None, ["x"])], [vw(1)]]}, all_wrap=False)
    assert cmap.events[0] == {"a": (Slot(G, (0, 1)),)}
    assert cmap.events[1] == {"b": (Slot(G, (0, 2)), Slot(frozenset({"x"}), None))}
    assert cmap.events[2] == {"a": (), "b": (Slot(G, (0, 1)),)}
    assert cmap.frames_per_stream() == {"a": 2, "b": 2}


def test_all_wrap_adds_broadcast_start_and_end_per_tag() -> None:
    cmap = compile_mapping({"a": [[vw(1, ["t1"])], [vw(2, ["t2"])]], "b": [None, [vw(2, ["t2"])]]})
    assert len(cmap) == 4
    broadcast = (Slot(frozenset({"t1"}), None), Slot(frozenset({"t2"}), None))
    assert cmap.events[0] == {"a": broadcast, "b": broadcast}
    assert cmap.events[-1] == cmap.events[0]


def test_sequence_occurrences_have_own_constraint_namespace() -> None:
    body = {"parts": {"p": {"a": [[vw(1)]]}, "q": {"a": [[vw(1)]], "b": [[vw(1)]]}}, "sequence": ["p", "q", "p"]}
    cmap = compile_request(body, all_wrap=False)
    assert [ev["a"][0].constraint for ev in cmap.events] == [(0, 1), (1, 1), (2, 1)]
    assert "b" not in cmap.events[0] and "b" not in cmap.events[2]  # missing stream = null
    assert cmap.streams == ("a", "b")


def test_virtual_worker_objects_accepted() -> None:
    cmap = compile_mapping({"a": [[VirtualWorker(constraint=3)]]}, all_wrap=False)
    assert cmap.events[0]["a"] == (Slot(G, (0, 3)),)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"a": [[vw(1)]], "b": [[vw(1)], None]}, "same number of entries"),
        ({"a": "nope"}, "list of entries"),
        ({"a": [5]}, r"null, \[\] or a list"),
        ({"a": [[{"tags": 3}]]}, "invalid virtual worker"),
        ([], "must be an object"),
        # the shape of the short path, each with one thing wrong
        ({"a": [[vw(1)], [{"tags": [3], "constraint": 2}]]}, "tags must be a list of strings"),
        ({"a": [[vw(1)], [{"tags": ["generic"], "constraint": True}]]}, "constraint must be an integer"),
        ({"a": [[vw(1)], [{"tags": ["generic"], "constrain": 2}]]}, "unknown keys"),
        ({"a": [[vw(1)], [{"tags": ["generic"], "constraint": 2, "x": 0}]]}, "unknown keys"),
        ({"a": [[{"tags": [["generic"]], "constraint": 2}]]}, "tags must be a list of strings"),  # unhashable
        ({"a": [[{"tags": [{}], "constraint": None}]]}, "tags must be a list of strings"),
    ],
)
def test_invalid_maps_raise_mapping_error(body: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        compile_mapping(body)


def test_invalid_sequences() -> None:
    with pytest.raises(MappingError, match="unknown part"):
        compile_request({"parts": {"p": {"a": [None]}}, "sequence": ["x"]})
    with pytest.raises(MappingError, match="non-empty list"):
        compile_request({"parts": {"p": {"a": [None]}}, "sequence": []})
    with pytest.raises(MappingError, match="parts"):
        compile_request({"sequence": ["p"]})


entry = st.one_of(
    st.none(),
    st.just([]),
    st.lists(st.builds(vw, st.one_of(st.none(), st.integers(0, 5)), st.sampled_from([["generic"], ["x"]])), min_size=1, max_size=3),
)


@st.composite
def maps(draw: Any) -> dict[str, list[Any]]:
    n = draw(st.integers(1, 12))
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    return {name: draw(st.lists(entry, min_size=n, max_size=n)) for name in names}


@settings(max_examples=150, deadline=None)
@given(maps(), st.booleans())
def test_compiled_map_properties(mapping: dict[str, list[Any]], wrap: bool) -> None:
    cmap = compile_mapping(mapping, all_wrap=wrap)
    n = len(next(iter(mapping.values())))
    assert len(cmap) == n + (2 if wrap else 0)
    offset = 1 if wrap else 0
    for i in range(n):
        ev = cmap.events[i + offset]
        for stream, entries in mapping.items():
            raw = entries[i]
            if raw is None:
                assert stream not in ev
            else:
                assert stream in ev
                # every constrained slot keeps its constraint within occurrence 0
                constraints = {s.constraint for s in ev[stream] if s.constraint is not None}
                assert constraints == {(0, w["constraint"]) for w in raw if w["constraint"] is not None}
    counts = cmap.frames_per_stream()
    for stream, entries in mapping.items():
        assert counts[stream] == sum(e is not None for e in entries) + (2 if wrap else 0)
    # the scan's start checks these: each by its plain definition
    inner = cmap.events[offset:offset + n]
    assert cmap.min_workers() == max(len({s.constraint for slots in ev.values() for s in slots if s.constraint is not None})
                                     for ev in cmap.events)
    used = {t for ev in inner for slots in ev.values() for s in slots for t in s.tags}
    if wrap:
        assert {t for slots in cmap.events[0].values() for s in slots for t in s.tags} == (used or {"generic"})
    # slots are interned: equal slots are one object (the scan compares them by identity)
    by_value: dict[Slot, Slot] = {}
    for ev in inner:
        for slots in ev.values():
            for s in slots:
                assert by_value.setdefault(s, s) is s


def test_short_path_gives_the_slots_of_the_full_checks() -> None:
    """Entries in the common shape and the same workers written otherwise compile to the same
    (interned) slots, per occurrence of a part."""
    common = {"a": [[vw(i % 3)] for i in range(9)], "b": [[vw(i % 3)] for i in range(9)]}
    other = {"a": [[VirtualWorker(constraint=i % 3)] for i in range(9)],
             "b": [[{"constraint": i % 3, "tags": ("generic",)}] for i in range(9)]}
    x, y = compile_mapping(common), compile_mapping(other)
    assert x.events == y.events
    assert x.events[1]["a"] is x.events[4]["b"]  # one tuple per distinct entry


def test_a_legacy_body_is_kept_as_its_text() -> None:
    """The body's text is the source (parsed, the same document); text that ``json.loads``
    reads in another encoding or leniently is kept parsed instead."""
    body = b'{"a": [[{"tags": ["g\\u00e9", "\xc3\xa9"], "constraint": 1}], null],\n "b": [[], [{"constraint": 2}]]}'
    mapping = json.loads(body)
    cmap = compile_mapping(mapping, body=body)
    assert isinstance(cmap.source, SourceText)
    assert json.loads(cmap.source) == {"parts": {"main": mapping}, "sequence": ["main"]}
    assert cmap.events == compile_mapping(mapping).events
    cesu = b'{"a": [[{"tags": ["\xed\xa0\x80"], "constraint": 1}]]}'  # a surrogate json.loads lets through
    for odd in (b"\xef\xbb\xbf" + body, body.decode().encode("utf-16"), cesu):
        parsed = json.loads(odd)
        assert compile_mapping(parsed, body=odd).source == {"parts": {"main": parsed}, "sequence": ["main"]}
