"""Several events per ZeroMQ message when they queue up; one message each otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.errors import ProtocolError
from dranspose.event import ResultData
from dranspose.transport import batching, framing, results


def event_message(event: int, nframes: int) -> list[bytes]:
    header = framing.encode_header(event, [("det", "STINS", nframes)], "m")
    return [header, *(b"%d-%d" % (event, k) for k in range(nframes))]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_event_batches_round_trip(frame_counts: list[int]) -> None:
    messages = [event_message(i, n) for i, n in enumerate(frame_counts)]
    joined = batching.join(messages)
    assert batching.is_batch(joined[0]) == (len(messages) > 1)
    decoded = framing.decode_all(joined)
    assert [d[0] for d in decoded] == list(range(len(messages)))
    for (event, mapping, streams, _created, _whole), n in zip(decoded, frame_counts):
        assert mapping == "m" and [bytes(f) for f in streams["det"].frames] == [b"%d-%d" % (event, k) for k in range(n)]


def test_result_batches_round_trip() -> None:
    msgs = [results.encode(ResultData.model_construct(event_number=i, worker="w", parameters_hash=None,
                                                      payload={"i": i, "a": np.arange(2048)}), "m") for i in range(5)]
    out = []
    for parsed, single in batching.split_parsed(batching.join(msgs), results.frames_declared):
        result, mapping = results.decode(single, results.result_allow_list([None]), results.decode_header(single, parsed))
        out.append(result)
    assert [r.payload["i"] for r in out] == list(range(5))
    assert all(np.array_equal(r.payload["a"], np.arange(2048)) for r in out)


@pytest.mark.parametrize(
    "parts",
    [
        [b'{"batch":[]}'],
        [b'{"batch":{"a":1}}'],
        [b'{"batch":[{"event_number":1,"streams":{"d":{"typ":"x","length":2}}}]}', b"one"],
        [b'{"batch":[{"event_number":1,"streams":{"d":{"typ":"x","length":1}}}]}', b"one", b"left over"],
        [b'{"batch":[{"event_number":1,"streams":{"d":{"typ":"x","length":1}}},{"event_number":-2,"streams":{}}]}', b"one"],
        [b'{"batch":[{"event_number":1,"streams":{"d":{"typ":"x","length":-1}}}]}'],
        [b'{"batch":[1, 2]}', b"x"],
        [b'{"batch": not json'],
        [b'{"batch":[' + b",".join([b'{"event_number":1,"streams":{}}'] * 5000) + b"]}"],
    ],
)
def test_bad_batches_are_refused(parts: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        framing.decode_all(parts)


def test_outbox_sends_single_messages_unchanged_and_caps_batches() -> None:
    box = batching.Outbox(max_events=3, max_bytes=10_000, max_delay_s=0.002)
    one = event_message(0, 1)
    assert box.add("w", one, 0.0) is None and not box.due(0.001) and box.due(0.003)
    assert list(box.drain()) == [("w", one, 1)]  # nothing to share it with: sent as it is
    assert box.add("w", event_message(1, 1), 0.0) is None
    assert box.add("v", event_message(2, 1), 0.0) is None
    full = box.add("w", event_message(3, 1), 0.0) or box.add("w", event_message(4, 1), 0.0)
    assert full is not None and [e[0] for e in framing.decode_all(full)] == [1, 3, 4]
    assert box.pending() == 1
    big = [b"h", b"x" * 20_000]
    assert box.add("v", big, 0.0) is not None  # byte cap: large payloads do not wait


def test_small_frames_share_one_packed_frame_large_ones_pass_through() -> None:
    import zmq

    big = b"B" * (batching.PACK_MAX + 1)
    msgs = [[framing.encode_header(i, [("det", "STINS", 2)], "m"), b"meta%d" % i, big if i == 1 else b"x" * 2048]
            for i in range(3)]
    joined = batching.join(msgs)
    assert len(joined) == 3  # header, the packed frame, the one large frame
    assert joined[2] is big  # passed on, not copied
    decoded = framing.decode_all(joined)
    for event, _mapping, streams, _created, _whole in decoded:
        frames = streams["det"].frames
        assert isinstance(frames[0], zmq.Frame)  # COMPAT: live frames are zmq.Frame (as received)
        assert frames[0].bytes == b"meta%d" % event
        if event == 1:
            assert frames[1] is big  # a frame of its own comes as it was received
        else:
            assert isinstance(frames[1], zmq.Frame) and frames[1].bytes == b"x" * 2048


@pytest.mark.parametrize(
    "packed, extra",
    [
        ("[1,1]", []),  # fewer sizes than frames
        ("[1,1,1,1]", []),  # more sizes than frames
        ("[1,2,3]", []),  # sizes do not cover the packed frame
        ("[1,1,-1]", []),  # a separate frame that is missing
        ("[1,1,1]", [b"left over"]),
        ("[1,1,99999999999]", []),  # larger than any packed frame may be
        ("[1,1,-5]", []),
        ('[1,1,"1"]', []),
        ('{"a":1}', []),
    ],
)
def test_hostile_packed_sizes_are_refused(packed: str, extra: list[bytes]) -> None:
    headers = b",".join(framing.encode_header(i, [("det", "STINS", 1)], "m") for i in range(3))
    parts = [b'{"batch":[' + headers + b'],"packed":' + packed.encode() + b"}", b"abc", *extra]
    with pytest.raises(ProtocolError):
        framing.decode_all(parts)


def test_packed_results_decode_from_views_of_the_received_frame() -> None:
    msgs = [results.encode(ResultData.model_construct(event_number=i, worker="w", parameters_hash=None,
                                                      payload={"i": i, "a": np.arange(100)}), "m") for i in range(4)]
    joined = batching.join(msgs)
    assert len(joined) == 2
    got = []
    for parsed, single in batching.split_parsed(joined, results.frames_declared):
        assert isinstance(parsed, dict) and isinstance(single[1], memoryview)
        header = results.decode_header(single, parsed)
        result, mapping = results.decode(single, results.result_allow_list([None]), header)
        got.append((result.event_number, mapping, result.payload["i"], int(result.payload["a"].sum())))
    assert got == [(i, "m", i, 4950) for i in range(4)]


def test_detached_result_buffers_do_not_keep_the_packed_frame() -> None:
    msgs = [results.encode(ResultData.model_construct(event_number=i, worker="w", parameters_hash=None,
                                                      payload={"a": np.full(1000, i)}), "m") for i in range(3)]
    joined = batching.join(msgs)
    for parsed, single in batching.split_parsed(joined, results.frames_declared):
        single[2:] = batching.detach(single[2:])
        assert all(isinstance(f, bytes) for f in single[2:])  # out-of-band arrays: copies
        result, _ = results.decode(single, results.result_allow_list([]), results.decode_header(single, parsed))
        assert int(result.payload["a"][0]) == parsed["event_number"]
        base = result.payload["a"].base
        assert not isinstance(base, memoryview) or base.nbytes == 8000
