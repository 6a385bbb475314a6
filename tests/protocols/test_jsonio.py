"""The JSON of messages between dranspose's components (``transport.jsonio``): orjson reads and
writes them, and what it reads equals what :mod:`json` reads; where orjson refuses, json's
result or json's error comes back (nothing is lost, no new error)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.errors import ControlMessageError
from dranspose.transport import control
from dranspose.transport.jsonio import dumps_compact, join_objects, loads_checked

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
VALUES = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(value=VALUES)
def test_reads_what_json_reads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert loads_checked(text) == json.loads(text)
        assert loads_checked(text.encode()) == json.loads(text)
        assert loads_checked(memoryview(text.encode())) == json.loads(text)


@settings(max_examples=400, deadline=None)
@given(value=VALUES)
def test_writes_what_json_reads_back(value: Any) -> None:
    raw = dumps_compact(value)
    assert json.loads(raw) == value


@pytest.mark.parametrize(
    "text",
    ['{"a": NaN}', "[Infinity, -Infinity]", '"\\ud800"', "1e400", "[" * 50 + "]" * 50],
)
def test_what_orjson_refuses_json_reads(text: str) -> None:
    got, want = loads_checked(text), json.loads(text)
    assert repr(got) == repr(want)  # NaN != NaN: compare spellings
    if isinstance(want, dict):
        assert math.isnan(got["a"])


@pytest.mark.parametrize("raw", [b'{"a": 1', b"\xff\xfe{}", b"[1,]", b"", b"{} x"])
def test_malformed_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads_checked(raw)


def test_integers_past_64_bits_are_written_and_refused_as_event_numbers() -> None:
    assert json.loads(dumps_compact({"n": 1 << 70})) == {"n": 1 << 70}  # json writes what orjson cannot
    for big in (1 << 64, (1 << 63), -(1 << 63) - 1):
        raw = b'{"w": "w0", "done": [1, %d], "sent": 0}' % big
        with pytest.raises(ControlMessageError, match="bad event number"):
            control.decode_report(raw)


def test_reports_round_trip_through_orjson() -> None:
    report = control.WorkerReport("wörker-1", [5, 7, 9], 3, results=[5, 7, 9], n=3, busy=0.25, nbytes=6144)
    raw = control.encode_report(report)
    assert json.loads(raw)["w"] == "wörker-1"
    back = control.decode_report(raw)
    assert back == report


def test_join_objects_keeps_every_member_in_order() -> None:
    joined = join_objects(b'{"uuid":"u"}', b"{}", b'{"parts":{"main":{"a": [1, 2]}},"sequence":["main"]}')
    assert joined == b'{"uuid":"u","parts":{"main":{"a": [1, 2]}},"sequence":["main"]}'
    assert list(json.loads(joined)) == ["uuid", "parts", "sequence"]
    assert join_objects(b"{}", b"{}") == b"{}"
