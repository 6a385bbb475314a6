"""A short pickle cannot make an unpickler allocate a huge memo: results, dumps and parameter
files walk the opcodes first (dranspose.pickle_ops) and refuse memo indices no pickler writes."""

from __future__ import annotations

import collections
import datetime
import gzip
import pickle
import pickletools
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.dumps.dumpfile import DumpError, read_dump
from dranspose.errors import ConfigError, ProtocolError, UnpicklingRefused
from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.pickle_ops import PickleMalformed, PickleTruncated, check_memo, walk
from dranspose.replay.params import read_parameter_file
from dranspose.transport import results

HEADER = b'{"event_number":1,"worker":"w","parameters_hash":null,"mapping":null,"buffers":0}'
HUGE_INDEX = 88_801_649  # CPython would size its memo for this: ~700 MB


def _long_binput(index: int, protocol: int = 4) -> bytes:
    """``None``, stored at ``index`` by LONG_BINPUT: 9 bytes that ask for a huge memo."""
    return bytes([0x80, protocol]) + b"N" + b"r" + index.to_bytes(4, "little") + b"."


def _text_put(index: int) -> bytes:
    return b"N" + b"p" + str(index).encode() + b"\n."


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _peak_mb() -> float:
    return tracemalloc.get_traced_memory()[1] / 1e6


def test_hostile_memo_index_in_a_result_is_refused_without_allocating(traced: None) -> None:
    allow = results.result_allow_list([])
    for body in (_long_binput(HUGE_INDEX), _long_binput(HUGE_INDEX, protocol=2), _text_put(HUGE_INDEX)):
        tracemalloc.reset_peak()
        with pytest.raises(UnpicklingRefused, match=f"memo index {HUGE_INDEX}"):
            results.decode([HEADER, body], allow)
        assert _peak_mb() < 5, f"refusing a {len(body)}-byte pickle took {_peak_mb():.0f} MB"


def test_unchecked_the_same_pickle_does_allocate() -> None:
    """The check guards something real: the unpickler itself sizes the memo by the index."""
    tracemalloc.start()
    try:
        assert pickle.loads(_long_binput(4_000_000)) is None
        assert tracemalloc.get_traced_memory()[1] > 30e6
    finally:
        tracemalloc.stop()


def test_pickles_as_written_pass_also_optimized_and_every_protocol() -> None:
    shared = [1, 2]
    payloads = [
        {"a": np.arange(5), "b": [shared, shared], "s": "x" * 300, "t": datetime.datetime(2026, 1, 2)},
        collections.OrderedDict(x=np.zeros((3, 3), np.float32)),
        [b"x" * 70_000, "é" * 5000],
    ]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for obj in payloads:
            data = pickle.dumps(obj, protocol=protocol)
            for body in (data, pickletools.optimize(data)):
                assert check_memo(body) == len(body)


@settings(max_examples=200, deadline=None)
@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
        max_leaves=30,
    ),
    protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
)
def test_walk_sees_the_memo_stores_pickletools_sees(obj: object, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol) + b"trailing"
    stores: list[int] = []
    end = walk(data, lambda index, count, offset: stores.append(index))
    expected = [arg if op.name != "MEMOIZE" else -1 for op, arg, _ in pickletools.genops(data)
                if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE")]
    assert end == len(data) - len(b"trailing")
    assert stores == expected


def test_truncated_and_unknown_opcodes_are_told_apart() -> None:
    data = pickle.dumps({"a": b"x" * 1000}, protocol=5)
    with pytest.raises(PickleTruncated):
        check_memo(data[:-20])
    with pytest.raises(PickleMalformed, match="0xff"):
        check_memo(b"\x80\x04\xff.")
    # a length field claiming 2**60 bytes is truncation, not an allocation
    with pytest.raises(PickleTruncated):
        check_memo(b"\x80\x05\x8e" + (2**60).to_bytes(8, "little") + b".")


def test_hostile_dump_is_a_dump_error_and_good_events_before_it_are_read(tmp_path, traced: None) -> None:
    good = InternalWorkerMessage(event_number=1, streams={"s": StreamData(typ="STINS", frames=[b"{}", b"x" * 100_000])})
    path = tmp_path / "dump.pkls.gz"
    with gzip.open(path, "wb") as f:
        f.write(pickle.dumps(good))
        f.write(_long_binput(HUGE_INDEX))
    tracemalloc.reset_peak()
    events = []
    with pytest.raises(DumpError, match=f"memo index {HUGE_INDEX}"):
        for event in read_dump(path):
            events.append(event)
    assert [e.event_number for e in events] == [1]
    assert events[0].streams["s"].frames[1] == b"x" * 100_000
    assert _peak_mb() < 20


def test_many_pickles_in_one_dump_read_back_in_order(tmp_path) -> None:
    path = tmp_path / "dump.pkls"
    with open(path, "wb") as f:
        for n in range(300):
            msg = InternalWorkerMessage(event_number=n, streams={"s": StreamData(typ="STINS", frames=[b"h", bytes(n * 997 % 70_001)])})
            f.write(pickle.dumps(msg))
    got = list(read_dump(path))
    assert [e.event_number for e in got] == list(range(300))
    assert [len(e.streams["s"].frames[1]) for e in got] == [n * 997 % 70_001 for n in range(300)]


def test_truncated_dump_names_the_offset(tmp_path) -> None:
    path = tmp_path / "dump.pkls"
    one = pickle.dumps(InternalWorkerMessage(event_number=1, streams={}))
    path.write_bytes(one + one[:-3])
    with pytest.raises(DumpError, match=f"truncated pickle at byte offset {len(one)}"):
        list(read_dump(path))


def test_hostile_parameter_file_is_a_config_error(tmp_path, traced: None) -> None:
    path = tmp_path / "params.pkl"
    path.write_bytes(_long_binput(HUGE_INDEX))
    tracemalloc.reset_peak()
    with pytest.raises(ConfigError, match=f"memo index {HUGE_INDEX}"):
        read_parameter_file(path)
    assert _peak_mb() < 5


def test_corrupt_result_pickles_stay_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="corrupt pickle"):
        results.decode([HEADER, b"\x80\x05garbage"], results.result_allow_list([]))
