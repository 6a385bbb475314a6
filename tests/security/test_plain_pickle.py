"""The shortcut of restricted unpickling: a pickle of plain data (no opcode that resolves a
global or calls anything, sound memo indices) is read by :func:`pickle.loads` directly; every
other pickle takes the allow-list and dtype checks as before."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.errors import UnpicklingRefused
from dranspose.pickle_ops import is_plain_data
from dranspose.safe_pickle import PLAIN_DATA, restricted_loads

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    | st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=plain, protocol=st.integers(1, 5))
def test_plain_data_takes_the_shortcut_and_reads_the_same(value: object, protocol: int) -> None:
    data = pickle.dumps(value, protocol=protocol)
    if protocol >= 4:  # older protocols write bytes and frozensets through a global
        assert is_plain_data(data)
    if is_plain_data(data):
        assert restricted_loads(data) == pickle.loads(data)


# hand-made pickles, each with one opcode that reaches a callable or a global
CALLING = {
    "STACK_GLOBAL": b"\x80\x05\x8c\x02os\x8c\x06system\x93.",
    "EXT1": b"\x80\x05\x82\x01.",
    "EXT2": b"\x80\x05\x83\x01\x00.",
    "EXT4": b"\x80\x05\x84\x01\x00\x00\x00.",
    "REDUCE": b"\x80\x05K\x01)R.",
    "BUILD": b"\x80\x05K\x01}b.",
    "NEWOBJ": b"\x80\x05K\x01)\x81.",
    "NEWOBJ_EX": b"\x80\x05K\x01)}\x92.",
    "OBJ": b"\x80\x05(K\x01o.",
    "BINPERSID": b"\x80\x05K\x01Q.",
    "GLOBAL": b"\x80\x02cos\nsystem\n.",
}


@pytest.mark.parametrize("name", sorted(CALLING))
def test_a_calling_opcode_is_never_plain(name: str) -> None:
    assert not is_plain_data(CALLING[name])


def test_globals_still_go_through_the_allow_list() -> None:
    with pytest.raises(UnpicklingRefused, match="os.system"):
        restricted_loads(CALLING["STACK_GLOBAL"])
    arr = np.arange(6, dtype=np.uint16).reshape(2, 3)
    data = pickle.dumps(arr, protocol=5)
    assert not is_plain_data(data)
    assert np.array_equal(restricted_loads(data, PLAIN_DATA), arr)
    assert not is_plain_data(pickle.dumps(collections.OrderedDict(a=1), protocol=5))


def test_huge_memo_index_and_text_pickles_are_not_plain() -> None:
    assert not is_plain_data(b"\x80\x04Nr\xff\xff\xff\x00.")  # LONG_BINPUT far past the opcodes read
    assert not is_plain_data(pickle.dumps([1, 2], protocol=0))  # text protocol: the full walk reads it
    assert not is_plain_data(b"")
    assert not is_plain_data(b"\x80\x05K")  # truncated


def test_out_of_band_buffers_on_the_shortcut() -> None:
    buf = pickle.PickleBuffer(bytearray(b"abcdefgh"))
    kept: list[pickle.PickleBuffer] = []
    data = pickle.dumps({"b": buf}, protocol=5, buffer_callback=kept.append)
    assert is_plain_data(data) and len(kept) == 1
    out = restricted_loads(data, buffers=[kept[0].raw()])
    assert bytes(out["b"]) == b"abcdefgh"
