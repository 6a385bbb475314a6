"""``join_messages`` on both backends: the same batch message, byte for byte, from the same
messages; large frames passed on (not copied); what the receiving side splits back out is
what was joined."""

from __future__ import annotations

from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.transport import batching

FRAME = st.one_of(
    st.binary(max_size=40),
    st.binary(max_size=40).map(zmq.Frame),
    st.binary(max_size=40).map(lambda b: memoryview(b"[" + b + b"]")[1:-1]),
)
HEADER = st.binary(min_size=2, max_size=12).map(lambda b: b'{"h":"' + b.hex().encode() + b'"}')
MESSAGE = st.tuples(HEADER, st.lists(FRAME, max_size=4)).map(lambda hf: [hf[0], *hf[1]])


def _comparable(parts: list[Any]) -> list[bytes]:
    return [bytes(p) for p in parts]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(MESSAGE, min_size=2, max_size=6), pack_max=st.sampled_from([0, 8, 20, 64 << 10]))
def test_join_matches_the_reference(messages: list[list[Any]], pack_max: int) -> None:
    found = backend.available()
    compiled = found["compiled"].join_messages(messages, pack_max)
    reference = found["python"].join_messages(messages, pack_max)
    assert _comparable(compiled) == _comparable(reference)
    assert [type(p) for p in compiled[2:]] == [type(p) for p in reference[2:]]


def test_join_packs_small_frames_and_passes_large_ones(be: backend.Backend) -> None:
    large = zmq.Frame(b"L" * 100)
    view = memoryview(b"xabcx")[1:4]
    out = be.join_messages([[b'{"a":1}', b"12", large], [b'{"b":2}', view, b""]], 50)
    assert out[0] == b'{"batch":[{"a":1},{"b":2}],"packed":[2,-1,3,0]}'
    assert out[1] == b"12abc"
    assert len(out) == 3 and out[2] is large  # passed on, not copied


def test_join_refuses_what_it_cannot_join(be: backend.Backend) -> None:
    with pytest.raises(ValueError):
        be.join_messages([[b"{}", b"x"]], 10)  # a batch is two or more
    with pytest.raises(ValueError):
        be.join_messages([[b"{}"], []], 10)  # a message without a header
    with pytest.raises(TypeError):
        be.join_messages([[b"{}", 5], [b"{}"]], 10)  # a frame that is not bytes-like
    with pytest.raises(TypeError):
        be.join_messages([(b"{}", b"x"), [b"{}"]], 10)  # type: ignore[list-item]


def test_joined_batch_splits_back() -> None:
    """What the outbox joins, the receiver's ``split_parsed`` gives back, message by message."""
    large = b"Z" * (batching.PACK_MAX + 1)
    messages = [[b'{"n":%d}' % i, b"a" * i, large if i == 1 else b"b"] for i in range(3)]
    joined = batching.join(messages)
    back = list(batching.split_parsed(joined, lambda h: 2))
    assert [h for h, _ in back] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [[bytes(f) for f in single[1:]] for _, single in back] == [m[1:] for m in messages]


def test_compiled_join_survives_messages_changed_under_it() -> None:
    """A frame whose ``len()`` changes the messages being joined gets an error, not a write
    past the buffer sized for them (the compiled loop reads the lists without copying them)."""
    join = backend.available()["compiled"].join_messages
    messages: list[list[Any]] = []

    class Growing(bytes):
        def __len__(self) -> int:
            messages[1].extend([b"x"] * 50)  # more frames than were counted
            return bytes.__len__(self)

    class Shrinking(bytes):
        def __len__(self) -> int:
            messages.clear()
            return bytes.__len__(self)

    for odd in (Growing(b"ab"), Shrinking(b"ab")):
        messages[:] = [[b"{}", odd], [b"{}", b"y"]]
        with pytest.raises(RuntimeError, match="changed while"):
            join(messages, 100)
