"""``pickle_memo_end`` on both backends: the one-loop memo check agrees with the full walk of
``dranspose.pickle_ops`` on every pickle it takes, and hands every other one (protocols 0/1,
hostile indices, truncation, garbage) back with -1, never a wrong offset."""

from __future__ import annotations

import datetime
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.errors import UnpicklingRefused
from dranspose.pickle_ops import FAST_KINDS, FAST_STORES, PickleMalformed, check_memo, walk

OBJECTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


def end_of(be: backend.Backend, data: bytes) -> int:
    return int(be.pickle_memo_end(data, FAST_KINDS, FAST_STORES))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=OBJECTS, protocol=st.integers(2, pickle.HIGHEST_PROTOCOL))
def test_binary_pickles_end_where_the_walk_ends(be: backend.Backend, obj: object, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    end = end_of(be, data + b"trailing")
    assert walk(data + b"trailing", lambda *a: None) == len(data)
    if protocol >= 4:  # globals by STACK_GLOBAL: nothing with a line argument
        assert end == len(data)
    else:  # protocols 2 and 3 name globals (bytes, in 2) by a line: handed to the walk
        assert end in (-1, len(data))


def test_arrays_and_shared_objects_every_binary_protocol(be: backend.Backend) -> None:
    shared = [1, 2]
    obj = {"a": np.arange(5), "b": [shared, shared], "t": datetime.datetime(2026, 1, 2), "big": b"x" * 70_000}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(obj, protocol=protocol)
        assert end_of(be, data) in (-1, len(data))  # -1 only where a line argument (GLOBAL) appears
        assert check_memo(data) == len(data)
    assert end_of(be, pickle.dumps(obj, protocol=5)) == len(pickle.dumps(obj, protocol=5))


def test_what_it_does_not_take_goes_back_to_the_walk(be: backend.Backend) -> None:
    assert end_of(be, pickle.dumps({"a": 1}, protocol=0)) == -1  # line arguments
    hostile = b"\x80\x04N\x94r" + (88801649).to_bytes(4, "little") + b"."  # LONG_BINPUT far ahead
    assert end_of(be, hostile) == -1
    with pytest.raises(UnpicklingRefused):
        check_memo(hostile)
    blob = b"B" + (70_000).to_bytes(4, "little") + bytes(70_000)  # past the size the walk releases the GIL at
    assert end_of(be, b"\x80\x04" + blob + b"\x94r" + (88801649).to_bytes(4, "little") + b".") == -1
    assert end_of(be, b"\x80\x04" + blob + b"\x94.") == 2 + len(blob) + 2
    data = pickle.dumps({"a": b"x" * 1000}, protocol=5)
    assert end_of(be, data[:-20]) == -1  # truncated
    assert end_of(be, b"\x80\x04\xff.") == -1  # unknown opcode
    assert end_of(be, b"\x80\x05\x8e" + (2**60).to_bytes(8, "little") + b".") == -1  # length past the end
    assert end_of(be, b"\x80\x04B" + (2**31 + 5).to_bytes(4, "little") + b".") == -1  # negative BINBYTES length
    with pytest.raises(ValueError):
        be.pickle_memo_end(data, FAST_KINDS[:10], FAST_STORES)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64))
def test_garbage_is_never_given_a_wrong_end(be: backend.Backend, data: bytes) -> None:
    end = end_of(be, data)
    if end < 0:
        return
    assert walk(data, lambda index, count, offset: None) == end  # the walk reads it the same
    assert check_memo(data) == end


def test_both_backends_agree_on_mutations(be: backend.Backend) -> None:
    rng = np.random.default_rng(1)
    base = pickle.dumps({"frame": 1, "shape": [2048], "t": 1.5, "xs": list(range(40))}, protocol=5)
    other = backend.available()["python"]
    for _ in range(2000):
        buf = bytearray(base)
        for _ in range(rng.integers(1, 4)):
            buf[int(rng.integers(0, len(buf)))] = int(rng.integers(0, 256))
        data = bytes(buf)
        assert end_of(be, data) == end_of(other, data)
        if end_of(be, data) < 0:
            try:
                check_memo(data)
            except (UnpicklingRefused, PickleMalformed):
                pass
