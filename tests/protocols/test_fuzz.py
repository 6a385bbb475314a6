"""Fuzzing every decoder and cutter with mutated real messages: no crash, no hang, only
ProtocolError (the documented exception). Bounded: a fixed number of examples per target."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose.data.positioncap import PositionCapField
from dranspose.errors import ProtocolError
from dranspose.protocols import albaem, contrast, lecroy, pcap, positioncap, sardana, xspress3
from tests.protocols.proto_helpers import read_capture

FUZZ = settings(
    max_examples=120, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
MAX_SECONDS = 2.0


def _positioncap_messages() -> list[list[bytes]]:
    fields = [PositionCapField(name="PCAP.TS_TRIG.Value", type="double"), PositionCapField(name="A.B.Value", type="uint32")]
    arm = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return [
        [positioncap.encode_header(arm, fields)],
        [positioncap.encode_values([0.5, 3])],
        [positioncap.encode_end(1, "Ok")],
    ]


def _lecroy_units() -> list[list[bytes]]:
    units: list[list[bytes]] = []
    cutter = lecroy.CUTTER()
    for msg in read_capture("maui-02-continuous-3.cbor.gz"):
        units += [[bytes(f) for f in u.frames] for u in cutter.feed(msg)]
    # keep the fuzzing cheap: one small synthetic sequence in place of the 64 kB traces
    small = lecroy.encode_traces(2, 0, np.arange(16.0).reshape(2, 8), [1.0, 2.0])
    units.append(lecroy.encode_seqstart(0, 2, 0, [2]) + small + lecroy.encode_seqend(1))
    return [u for u in units if sum(len(f) for f in u) < 10000]


def _xspress_units() -> list[list[bytes]]:
    msgs = read_capture("xspress3-dump.cbors")
    small = xspress3.encode_image(0, np.arange(16, dtype=np.uint32).reshape(2, 8), [np.ones(2)] * 8 + [np.ones((2, 2), np.uint32)])
    return [msgs[0], msgs[-1], [msgs[1][0], msgs[2][0], msgs[3][0]], small]


CORPUS: dict[str, list[list[bytes]]] = {
    "xspress3": _xspress_units(),
    "pcap": read_capture("pcap-zmq.cbors")[:3] + read_capture("pcap-zmq.cbors")[-1:],
    "contrast": read_capture("contrast-dump.cbors")[:3] + read_capture("contrast-dump.cbors")[-3:-2],
    "albaem": read_capture("albaem-dump.cbors"),
    "lecroy": _lecroy_units(),
    "positioncap": _positioncap_messages(),
    "sardana": [
        [b'{"type":"DataDescription","serialno":1,"scandir":"/d","title":"t","column_desc":[{"name":"a"}]}'],
        [b'{"type":"RecordData","timestamp":0.61,"point_nb":3,"dummy_mot_01":0}'],
        [b'{"type":"RecordEnd"}'],
    ],
}


def _decode_positioncap(frames: Sequence[bytes]) -> Any:
    state = positioncap.HeaderState()
    positioncap.decode(_positioncap_messages()[0], state)
    return positioncap.decode(frames, state)


DECODERS: dict[str, Callable[[Sequence[bytes]], Any]] = {
    "xspress3": xspress3.decode,
    "pcap": pcap.decode,
    "contrast": contrast.decode,
    "albaem": albaem.decode,
    "lecroy": lecroy.decode,
    "positioncap": _decode_positioncap,
    "sardana": sardana.decode,
}
CUTTERS: dict[str, Callable[[], Any]] = {
    "xspress3": xspress3.CUTTER,
    "pcap": pcap.CUTTER,
    "contrast": contrast.CUTTER,
    "albaem": albaem.CUTTER,
    "lecroy": lecroy.CUTTER,
    "positioncap": positioncap.CUTTER,
    "sardana": sardana.CUTTER,
}


@st.composite
def mutated(draw: st.DrawFn, name: str) -> list[bytes]:
    frames = [bytearray(f) for f in draw(st.sampled_from(CORPUS[name]))]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(frames) - 1))
        frame = frames[i]
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "drop_frame", "dup_frame"]))
        pos = draw(st.integers(0, max(len(frame) - 1, 0)))
        if op == "flip" and frame:
            frame[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and frame:
            frame[pos] = draw(st.sampled_from(b'\x00\xff{}[]":,0123456789-.eE\n \x80\x93\x85R.'))
        elif op == "truncate":
            del frame[pos:]
        elif op == "insert":
            frame[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del frame[pos : pos + draw(st.integers(1, 16))]
        elif op == "drop_frame" and len(frames) > 1:
            del frames[i]
        elif op == "dup_frame":
            frames.insert(i, bytearray(frame))
    return [bytes(f) for f in frames]


def _only_protocol_errors(fn: Callable[[], Any]) -> None:
    t0 = time.perf_counter()
    try:
        fn()
    except ProtocolError:
        pass
    assert time.perf_counter() - t0 < MAX_SECONDS


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_fuzz_decoder(name: str) -> None:
    for frames in CORPUS[name]:  # the unmutated corpus decodes
        DECODERS[name](frames)

    @FUZZ
    @given(frames=mutated(name))
    def run(frames: list[bytes]) -> None:
        _only_protocol_errors(lambda: DECODERS[name](frames))

    run()


@pytest.mark.parametrize("name", sorted(CUTTERS))
def test_fuzz_cutter(name: str) -> None:
    @FUZZ
    @given(messages=st.lists(st.one_of(mutated(name), st.sampled_from(CORPUS[name])), min_size=1, max_size=6))
    def run(messages: list[list[bytes]]) -> None:
        cutter = CUTTERS[name]()
        for msg in messages:
            _only_protocol_errors(lambda: cutter.feed(msg))

    run()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("name", ["xspress3", "pcap", "albaem", "lecroy", "sardana"])
def test_fuzz_json_fields(name: str) -> None:
    """Replace one key of a real JSON part by an arbitrary JSON value (types pydantic must reject)."""
    units = [u for u in CORPUS[name] if u[0][:1] == b"{"]

    @FUZZ
    @given(unit=st.sampled_from(units), value=JSON_VALUES, pick=st.integers(0, 100))
    def run(unit: list[bytes], value: Any, pick: int) -> None:
        obj = json.loads(unit[0])
        key = sorted(obj)[pick % len(obj)]
        obj[key] = value
        frames = [json.dumps(obj).encode(), *unit[1:]]
        _only_protocol_errors(lambda: DECODERS[name](frames))
        _only_protocol_errors(lambda: CUTTERS[name]().feed(frames))

    run()


def test_fuzz_positioncap_splitter() -> None:
    stream = positioncap.OK_REPLY + b"".join(m[0] for m in _positioncap_messages())

    @FUZZ
    @given(cuts=st.lists(st.integers(0, len(stream)), max_size=6), junk=st.binary(max_size=40), at=st.integers(0, len(stream)))
    def run(cuts: list[int], junk: bytes, at: int) -> None:
        data = stream[:at] + junk + stream[at:]
        splitter = positioncap.PositionCapSplitter()
        bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
        state = positioncap.HeaderState()
        for a, b in zip(bounds, bounds[1:]):
            msgs: list[bytes] = []
            _only_protocol_errors(lambda: msgs.extend(splitter.feed(data[a:b])))
            for m in msgs:
                _only_protocol_errors(lambda: positioncap.decode([m], state))

    run()


def test_fuzz_sardana_requests() -> None:
    @FUZZ
    @given(path=st.sampled_from(list(sardana.ENDPOINTS) + ["/x", ""]), body=JSON_VALUES)
    def run(path: str, body: Any) -> None:
        _only_protocol_errors(lambda: sardana.message_from_request(path, json.dumps(body).encode()))

    run()
