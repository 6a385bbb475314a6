"""``build_model`` and ``split_events`` on both backends: the worker's per-event objects built
in C are the ones pydantic's ``model_construct`` builds, and a received batch splits into the
same events with the same checks and the same error messages as the reference."""

from __future__ import annotations

from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.errors import ProtocolError
from dranspose.event import EventData, ResultData, StreamData, builds_fast
from dranspose.transport import batching, framing

SAMPLES: list[tuple[type[Any], dict[str, Any]]] = [
    (StreamData, {"typ": "STINS", "frames": [b"{}", zmq.Frame(b"pixels")]}),
    (EventData, {"event_number": 7, "streams": {"det": StreamData(typ="STINS", frames=[b"x"])}, "created_at": None}),
    (ResultData, {"event_number": 3, "worker": "w0", "parameters_hash": None, "payload": {"sum": 1.5}}),
]


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=[c.__name__ for c, _ in SAMPLES])
def test_build_is_model_construct(be: backend.Backend, cls: type[Any], values: dict[str, Any]) -> None:
    assert builds_fast(cls)  # this pydantic: the fast path is the one dranspose takes
    fields = dict(values)
    built = be.build_model(cls, fields)
    slow = cls.model_construct(**values)
    assert type(built) is cls
    assert built == slow and repr(built) == repr(slow)
    assert built.__dict__ is fields  # handed over, not copied
    assert built.model_fields_set == set(values)
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert built.model_dump() == slow.model_dump()


def test_build_refuses_what_is_not_a_class_and_a_dict(be: backend.Backend) -> None:
    with pytest.raises(TypeError):
        be.build_model(3, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        be.build_model(StreamData, [("typ", "x")])  # type: ignore[arg-type]


def _split(be: backend.Backend, headers: list[Any], frames: list[Any]) -> Any:
    """What ``split_events`` gives, in a comparable form: the events, or the error message."""
    try:
        events = be.split_events(headers, frames, StreamData, zmq.Frame)
    except ValueError as exc:
        return ("error", str(exc))
    out = []
    for event, mapping, streams, created, whole in events:
        shown = []
        for name, sd in streams.items():
            assert type(sd) is StreamData
            shown.append((name, sd.typ, [(type(f).__name__, bytes(f)) for f in sd.frames]))
        out.append((event, mapping, shown, created, whole))
    return ("events", out)


STREAM_ENTRY = st.one_of(
    st.fixed_dictionaries({"typ": st.sampled_from(["STINS", "EIGER"]), "length": st.integers(0, 3)}),
    st.fixed_dictionaries({"typ": st.sampled_from(["STINS"]), "length": st.integers(-2, 3)}),
    st.fixed_dictionaries({"typ": st.integers(0, 2), "length": st.integers(0, 2)}),
    st.fixed_dictionaries({"typ": st.just("STINS"), "length": st.sampled_from([True, 1.0, "1", None])}),
    st.fixed_dictionaries({"typ": st.just("STINS")}),
    st.just([1, 2]),
    st.just("entry"),
)
GOOD_HEADER = st.fixed_dictionaries(
    {
        "event_number": st.integers(0, 1 << 40),
        "streams": st.dictionaries(st.sampled_from(["det", "pcap", "ämne"]), STREAM_ENTRY, max_size=2),
    },
    optional={
        "mapping": st.one_of(st.none(), st.text(max_size=5), st.integers()),
        "created_at": st.one_of(st.none(), st.just("2026-12-06T06:00:00.000001Z"), st.floats()),
        "whole": st.one_of(st.booleans(), st.booleans(), st.none(), st.integers(0, 1), st.just("true")),
    },
)
HEADER = st.one_of(
    GOOD_HEADER,
    GOOD_HEADER,
    st.fixed_dictionaries({"event_number": st.sampled_from([-1, True, 1.5, "3", None]), "streams": st.just({})}),
    st.fixed_dictionaries({"event_number": st.just(1), "streams": st.sampled_from([[], "s", None])}),
    st.fixed_dictionaries({"streams": st.just({})}),
    st.sampled_from([None, 5, "header", [1]]),
)
FRAME = st.one_of(st.binary(max_size=6), st.binary(max_size=6).map(lambda b: memoryview(b"<" + b + b">")[1:-1]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=st.lists(HEADER, min_size=0, max_size=4), frames=st.lists(FRAME, max_size=8))
def test_split_matches_the_reference(headers: list[Any], frames: list[Any]) -> None:
    backends = backend.available()
    compiled, reference = backends["compiled"], backends["python"]
    before = (repr(headers), [bytes(f) for f in frames])
    assert _split(compiled, headers, frames) == _split(reference, headers, frames)
    assert (repr(headers), [bytes(f) for f in frames]) == before  # inputs only read


def test_split_makes_frames_of_views_and_passes_the_rest(be: backend.Backend) -> None:
    kept = zmq.Frame(b"large")
    packed = memoryview(b"abcdef")
    headers = [
        {"event_number": 4, "streams": {"det": {"typ": "STINS", "length": 2}}, "mapping": "m", "created_at": "t", "whole": True},
        {"event_number": 5, "streams": {"det": {"typ": "STINS", "length": 1}, "pcap": {"typ": "PCAP", "length": 0}}},
    ]
    events = be.split_events(headers, [packed[:2], kept, packed[2:]], StreamData, zmq.Frame)
    assert [(e, m, c, w) for e, m, _s, c, w in events] == [(4, "m", "t", True), (5, None, None, False)]
    first = events[0][2]["det"].frames
    assert type(first[0]) is zmq.Frame and first[0].bytes == b"ab"
    assert first[1] is kept  # not copied
    assert list(events[1][2]) == ["det", "pcap"] and events[1][2]["pcap"].frames == []


@pytest.mark.parametrize(
    ("headers", "nframes", "message"),
    [
        ([{"event_number": 1, "streams": {"det": {"typ": "STINS", "length": 2}}}], 1, "stream 'det' declares 2 frames, message has 1 left"),
        ([{"event_number": 1, "streams": {"det": {"typ": "STINS", "length": 1}}}], 2, "batch declares 1 frames, message has 2"),
        ([{"event_number": -1, "streams": {}}], 0, "bad ingester header"),
        ([{"event_number": 1, "streams": {"det": {"typ": 5, "length": 1}}}], 1, "event 1: bad stream entry 'det'"),
        ([{"event_number": 1, "streams": {}, "whole": 1}], 0, "whole is 1"),
    ],
)
def test_bad_batches_name_the_fault(be: backend.Backend, headers: list[Any], nframes: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        be.split_events(headers, [b"f"] * nframes, StreamData, zmq.Frame)


def test_decode_all_of_a_joined_batch() -> None:
    """The worker's decoding of a batch the ingester's outbox joined: events, frames and the
    ProtocolError of a corrupted one (through whichever backend is active)."""
    messages = [
        [framing.encode_header(i, (("det", "STINS", 2),), "m-1", "2026-12-06T06:00:00.000001Z", whole=i != 1),
         b'{"htype":"image"}', bytes([i]) * 100]
        for i in range(3)
    ]
    parts = batching.join(messages)
    events = framing.decode_all(parts)
    assert [e for e, *_ in events] == [0, 1, 2]
    assert [whole for *_, whole in events] == [True, False, True]
    for i, (_e, mapping, streams, created, _whole) in enumerate(events):
        assert mapping == "m-1" and created == "2026-12-06T06:00:00.000001Z"
        frames = streams["det"].frames
        assert all(type(f) is zmq.Frame for f in frames)
        assert [f.bytes for f in frames] == [b'{"htype":"image"}', bytes([i]) * 100]
    longer = [parts[0].replace(b'"length":2', b'"length":3', 1), parts[1]]  # the first takes one of the last's
    with pytest.raises(ProtocolError, match="event 2: stream 'det' declares 2 frames, message has 1 left"):
        framing.decode_all(longer)


def test_compiled_split_survives_frames_changed_under_it() -> None:
    """A ``frame_cls`` that empties the frame list gets an error, not a read of freed items."""
    split = backend.available()["compiled"].split_events
    frames: list[Any] = [memoryview(b"a"), memoryview(b"b")]

    def emptying(view: memoryview) -> bytes:
        frames.clear()
        return bytes(view)

    headers = [{"event_number": 1, "streams": {"det": {"typ": "STINS", "length": 2}}}]
    with pytest.raises(RuntimeError, match="changed while"):
        split(headers, frames, StreamData, emptying)
