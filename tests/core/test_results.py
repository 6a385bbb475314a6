"""Worker -> reducer result messages: zero-copy arrays, allow-listed unpickling."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import zmq

from dranspose.errors import ProtocolError, UnpicklingRefused
from dranspose.event import ResultData
from dranspose.transport import framing, results


def roundtrip_over_zmq(parts: list) -> list:
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = a.bind_to_random_port("tcp://127.0.0.1")
    b.connect(f"tcp://127.0.0.1:{port}")
    a.send_multipart(parts, copy=False)
    got = b.recv_multipart(copy=False)
    a.close(0), b.close(0)
    return got


def test_large_arrays_travel_out_of_band_and_stay_writable() -> None:
    img = np.arange(100_000, dtype=np.float32).reshape(100, 1000)
    rd = ResultData(event_number=5, worker="w1", parameters_hash="abc", payload={"img": img, "n": 3})
    parts = results.encode(rd, "m1")
    assert len(parts) == 3  # header, pickle, one buffer
    got, mapping = results.decode(roundtrip_over_zmq(parts), results.result_allow_list([]))
    assert mapping == "m1" and got.event_number == 5 and got.worker == "w1" and got.parameters_hash == "abc"
    np.testing.assert_array_equal(got.payload["img"], img)
    got.payload["img"][0, 0] = -1  # users may modify what they receive
    assert got.payload["n"] == 3


@pytest.mark.parametrize(
    ("event", "worker", "phash", "mapping", "payload"),
    [
        (5, "w1", None, "m-1", {"n": 1}),
        (0, 'we"ird\\name é', "abc", None, [1.5]),
        (2**40, "w\ud800", "h", "m", None),  # a lone surrogate: orjson refuses it, json writes it
        (np.int64(7), "w", None, "m", 3),  # not an int: written whole, and refused as it always was
        (9, "w", None, "m", {"img": np.zeros(2048, np.float32)}),  # one out-of-band buffer
    ],
)
def test_header_is_the_compact_json_of_its_fields(event, worker, phash, mapping, payload) -> None:
    """Written from cached parts or whole, the header has the same bytes as the compact JSON of
    its five fields in order (what receivers of every version parse)."""
    from dranspose.transport.jsonio import dumps_compact

    rd = ResultData.model_construct(event_number=event, worker=worker, parameters_hash=phash, payload=payload)
    nbuf = 1 if isinstance(payload, dict) and "img" in payload else 0
    whole = {"event_number": event, "worker": worker, "parameters_hash": phash, "mapping": mapping, "buffers": nbuf}
    if type(event) is not int:  # what JSON cannot write fails here as it fails written whole
        with pytest.raises(TypeError):
            dumps_compact(whole)
        with pytest.raises(TypeError):
            results.encode(rd, mapping)
        return
    parts = results.encode(rd, mapping)
    assert len(parts) - 2 == nbuf
    assert bytes(parts[0]) == dumps_compact(whole)
    assert results.decode_header(parts)["event_number"] == event


def test_refused_global_is_a_clear_error() -> None:
    header = b'{"event_number":1,"worker":"w","parameters_hash":null,"mapping":null,"buffers":0}'
    with pytest.raises(UnpicklingRefused, match="posix.system|os.system"):
        results.decode([header, pickle.dumps(os.system)], results.result_allow_list([]))
    with pytest.raises(UnpicklingRefused, match="builtins.eval"):
        results.decode([header, pickle.dumps(eval)], results.result_allow_list([]))


def test_payload_package_is_allowed() -> None:
    from tests.payloads.variants import KwargsOnlyWorker

    rd = ResultData(event_number=1, worker="w", payload=KwargsOnlyWorker(a=1))
    parts = results.encode(rd, None)
    with pytest.raises(UnpicklingRefused):
        results.decode(parts, results.result_allow_list(["other.pkg:Cls"]))
    got, _ = results.decode(parts, results.result_allow_list(["tests.payloads.variants:KwargsOnlyWorker"]))
    assert got.payload.kwargs == {"a": 1}


@pytest.mark.parametrize(
    "parts",
    [
        [b"not json", b""],
        [b'{"event_number":1,"worker":"w","buffers":2}', pickle.dumps(1)],
        [b'{"event_number":1,"worker":"w","buffers":0}', b"\x80\x05garbage"],
        [b"{}"],
    ],
)
def test_malformed_results_raise_protocol_error(parts: list) -> None:
    with pytest.raises(ProtocolError):
        results.decode(parts, results.result_allow_list([]))


def test_ingester_framing_roundtrip_and_errors() -> None:
    header = framing.encode_header(4, [("a", "STINS", 2), ("b", "raw", 1)], "m")
    event, mapping, streams, created, whole = framing.decode([header, b"a0", b"a1", b"b0"])
    assert (event, mapping, whole) == (4, "m", False) and created and created.endswith("Z")
    whole_header = framing.encode_header(5, [("a", "STINS", 1)], "m", whole=True)
    assert json.loads(whole_header)["whole"] is True and framing.decode([whole_header, b"a0"])[4] is True
    with pytest.raises(ProtocolError, match="whole is 'yes'"):
        framing.decode([whole_header.replace(b"true", b'"yes"'), b"a0"])
    assert streams["a"].frames == [b"a0", b"a1"] and streams["a"].typ == "STINS" and streams["b"].length == 1
    with pytest.raises(ProtocolError, match="declares 2 frames"):
        framing.decode([header, b"a0"])
    with pytest.raises(ProtocolError, match="beyond"):
        framing.decode([header, b"a0", b"a1", b"b0", b"extra"])
    with pytest.raises(ProtocolError, match="bad ingester header"):
        framing.decode([b"[]"])
