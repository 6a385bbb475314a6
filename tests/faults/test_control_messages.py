"""Control and completion messages: round trips, and hostile input gives one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.triggermap import SourceText
from dranspose.errors import ControlMessageError
from dranspose.transport import control

names = st.text(min_size=1, max_size=12)
events = st.lists(st.integers(0, 1 << 40), max_size=20)
pairs = st.lists(st.tuples(names, st.integers(0, 1 << 40)), max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 53), 1 << 53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

updates = st.one_of(
    st.builds(
        control.MappingAnnounced,
        uuid=names,
        source=json_values,
        n_workers=st.integers(0, 1000),
        dump_prefix=st.none() | st.text(max_size=10),
        frames_per_stream=st.dictionaries(names, st.integers(-1, 10**6), max_size=4),
    ),
    st.builds(control.ParametersChanged, name=names),
    st.builds(control.Finish, uuid=names, target=st.sampled_from(["workers", "reducer"])),
    st.builds(control.Stop, uuid=names),
)
reports = st.one_of(
    st.builds(
        control.WorkerReport,
        worker=names, done=events, sent=st.integers(0, 1 << 40), finished=st.booleans(),
        cancelled=events, results=st.none() | events, n=st.none() | st.integers(0, 1 << 40),
        busy=st.none() | st.floats(0, 1e6), nbytes=st.none() | st.integers(0, 1 << 50), starved=st.none() | st.floats(0, 1e6),
    ),
    st.builds(control.IngesterReport, ingester=names, lost=pairs),
    st.builds(
        control.ReducerReport,
        reducer=names, processed=st.dictionaries(names, st.integers(0, 1 << 40), max_size=4),
        finished=st.booleans(), instance=st.none() | names, received=st.none() | st.dictionaries(names, events, max_size=3),
    ),
)
targets = st.dictionaries(names, st.lists(names, max_size=3).map(tuple), max_size=3)


@settings(max_examples=200, deadline=None)
@given(msg=updates)
def test_update_round_trip(msg: control.Update) -> None:
    assert control.decode_update(control.encode_update(msg)) == msg


@settings(max_examples=100, deadline=None)
@given(msg=st.builds(control.MappingAnnounced, uuid=names, n_workers=st.integers(0, 9)))
def test_current_mapping_round_trip(msg: control.MappingAnnounced) -> None:
    assert control.decode_mapping(control.encode_mapping(msg)) == msg


def test_current_mapping_with_a_source_kept_as_text() -> None:
    """A source kept as text is spliced in: the same announcement as its parsed value."""
    text = SourceText(b'{"parts": {"main": {"a": [[{"tags": ["\xc3\xa9"], "constraint": 1}], null]}},\n "sequence": ["main"]}')
    value = json.loads(text)
    spliced = control.MappingAnnounced("u", text, 2, "/tmp/x_", {"a": 1})
    decoded = control.decode_mapping(control.encode_mapping(spliced))
    assert decoded == control.MappingAnnounced("u", value, 2, "/tmp/x_", {"a": 1})
    assert json.loads(control.encode_mapping(spliced)) == json.loads(control.encode_mapping(decoded))
    assert control.source_json(text) == bytes(text) and json.loads(control.source_json(value)) == value


@settings(max_examples=200, deadline=None)
@given(msg=reports)
def test_report_round_trip(msg: control.Report) -> None:
    assert control.decode_report(control.encode_report(msg)) == msg


@settings(max_examples=100, deadline=None)
@given(mapping=names, batch=st.lists(st.tuples(st.integers(0, 1 << 40), targets), max_size=10))
def test_assignment_round_trip(mapping: str, batch: list[tuple[int, control.Targets]]) -> None:
    decoded = control.decode_assignment(control.encode_assignment(mapping, batch))
    assert decoded == control.AssignmentBatch(mapping, batch)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_hostile_input_raises_one_error_type(raw: bytes) -> None:
    for decode in (control.decode_update, control.decode_report, control.decode_assignment, control.decode_mapping):
        try:
            decode(raw)
        except ControlMessageError:
            pass


@pytest.mark.parametrize(
    "decode, raw",
    [
        (control.decode_update, {"type": "finish"}),  # no uuid
        (control.decode_update, {"type": "finish", "uuid": "u", "target": "everyone"}),
        (control.decode_update, {"type": "launch", "uuid": "u"}),
        (control.decode_update, {"type": "mapping", "uuid": "u", "frames_per_stream": {"a": "x"}}),
        (control.decode_report, {"w": "w0", "done": [1, -2]}),
        (control.decode_report, {"w": "w0", "done": [True]}),
        (control.decode_report, {"w": 7, "done": []}),
        (control.decode_report, {"i": "ing", "lost": [["w0"]]}),
        (control.decode_report, {"r": "red", "processed": {"w0": "many"}}),
        (control.decode_report, {"r": "red", "processed": {}, "fin": "yes"}),
        (control.decode_report, {"x": 1}),
        (control.decode_report, {"w": "w0", "done": [], "starved": -1.0}),
        (control.decode_report, {"w": "w0", "done": [], "starved": "long"}),
        (control.decode_assignment, {"mapping": "m", "events": [[1, {"s": "w0"}]]}),
        (control.decode_assignment, {"mapping": "m", "events": [[-1, {}]]}),
        (control.decode_assignment, {"events": []}),
    ],
)
def test_malformed_fields_are_named(decode: Any, raw: dict[str, Any]) -> None:
    with pytest.raises(ControlMessageError):
        decode(json.dumps(raw).encode())


def test_wire_stays_compact() -> None:
    raw = control.encode_report(control.WorkerReport("w0", [1, 2], 2, results=[1]))
    assert json.loads(raw) == {"w": "w0", "done": [1, 2], "sent": 2, "res": [1]}
    assert b" " not in raw


@settings(max_examples=100, deadline=None)
@given(
    mapping=names,
    dead=names,
    batch=st.lists(st.tuples(st.integers(0, 1 << 40), targets, st.lists(names, max_size=3).map(tuple)), max_size=8),
)
def test_reroute_round_trip(mapping: str, dead: str, batch: list[tuple[int, control.Targets, tuple[str, ...]]]) -> None:
    decoded = control.decode_assignment(control.encode_reroute(mapping, dead, batch))
    assert decoded == control.RerouteBatch(mapping, dead, batch)


def test_bad_reroute_is_rejected() -> None:
    with pytest.raises(ControlMessageError):
        control.decode_assignment(b'{"mapping": "m", "reroute": "w0", "events": [[1, {"a": ["w1"]}]]}')


def test_reducer_report_of_the_earlier_pair_form_is_read_by_worker() -> None:
    raw = json.dumps({"r": "red", "processed": {"w0": 2}, "id": "x", "ev": [["w0", 3], ["w1", 4], ["w0", 5]]})
    msg = control.decode_report(raw.encode())
    assert isinstance(msg, control.ReducerReport) and msg.received == {"w0": [3, 5], "w1": [4]}
    with pytest.raises(control.ControlMessageError):
        control.decode_report(json.dumps({"r": "red", "rx": {"w0": [1, -2]}}).encode())
    with pytest.raises(control.ControlMessageError):
        control.decode_report(json.dumps({"r": "red", "rx": [["w0", 1]]}).encode())


def test_worker_report_says_every_event_sent_a_result_in_one_word() -> None:
    msg = control.WorkerReport("w0", [3, 4, 5], 3, results=[3, 4, 5], n=3)
    raw = control.encode_report(msg)
    assert b'"res":"all"' in raw and control.decode_report(raw) == msg
    partial = control.WorkerReport("w0", [3, 4, 5], 1, results=[4])
    assert control.decode_report(control.encode_report(partial)) == partial
    with pytest.raises(control.ControlMessageError):
        control.decode_report(json.dumps({"w": "w0", "done": [1], "res": "some"}).encode())
