"""The STINS cutter reads headers with orjson first and with json where orjson refuses or
reads differently (integers past 64 bits): every header gets json's verdict, unit and error."""

from __future__ import annotations

import json
from typing import Any

import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.errors import ProtocolError
from dranspose.protocols.stins import StinsCutter, _json

BLOB = zmq.Frame(b"\x00" * 16)
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
values = numbers | st.text(max_size=6) | st.lists(st.integers(-(2**66), 2**66), max_size=3)
headers = st.fixed_dictionaries(
    {"htype": st.sampled_from(["header", "image", "series_end", "other"])},
    optional={
        "frame": values, "msg_number": values, "shape": values,
        "type": st.sampled_from(["uint8", "<u2", "float32", "object", "(2,3)f4"]) | values,
        "compression": st.sampled_from(["none", "bslz4", "lz4", "zstd"]),
        "chunks": values, "extra": values,
    },
)


def _outcome(feed: Any, raw: bytes) -> Any:
    try:
        units = feed([zmq.Frame(raw), BLOB])
    except ProtocolError as exc:
        return ("error", str(exc))
    return [(u.kind, u.frame_number, dict(u.meta)) for u in units]


def _json_only(parts: list[Any]) -> Any:
    cutter = StinsCutter()
    return cutter._cut(parts, _json(parts[0]))


@settings(max_examples=400, deadline=None)
@given(header=headers, spaced=st.booleans())
def test_quick_reading_gives_jsons_verdict(header: dict[str, Any], spaced: bool) -> None:
    raw = json.dumps(header, separators=(", ", ": ") if spaced else (",", ":"), allow_nan=True).encode()
    assert _outcome(StinsCutter().feed, raw) == _outcome(_json_only, raw)


def test_headers_orjson_refuses_are_read_by_json() -> None:
    for raw in (
        b'{"htype":"image","frame":18446744073709551616,"shape":[4],"type":"uint8"}',  # past 64 bits
        b'{"htype":"image","frame":1,"shape":[4],"type":"uint8","x":NaN}',  # NaN literal
        '{"htype":"image","frame":2,"shape":[4],"type":"uint8"}'.encode("utf-16"),  # not UTF-8
        b'{"htype":"image","frame":3,"shape":[4],"type":"uint8","s":"\\ud800"}',  # lone surrogate
    ):
        assert _outcome(StinsCutter().feed, raw) == _outcome(_json_only, raw)
        assert _outcome(StinsCutter().feed, raw)[0][0].value == "data"
