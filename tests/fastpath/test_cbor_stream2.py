"""The CBOR walker (both backends) against cbor2, and stream v2 synthetic round trips."""

from __future__ import annotations

import math

import cbor2
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose._reference.cbor_types import CborTag, CompressedArray
from dranspose.errors import CorruptFrameError, ProtocolError
from dranspose.protocols import stream2
from dranspose.protocols.base import Kind

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64) + 1, 2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _plain(obj):
    """Normalize walker output (memoryviews) and cbor2 output (tuples in 6.x) for comparison."""
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


@SETTINGS
@given(plain)
def test_walker_matches_cbor2_on_plain_items(value):
    from dranspose import backend

    blob = cbor2.dumps(value)
    for be in backend.available().values():
        assert _plain(be.cbor_decode(blob)) == _plain(cbor2.loads(blob))
        assert _plain(be.cbor_decode(bytearray(b"" + blob))) == _plain(value)


def test_walker_special_items(be):
    half = bytes.fromhex("f93c00")  # 1.0 as float16
    assert be.cbor_decode(half) == 1.0
    assert be.cbor_decode(bytes.fromhex("f97e00")) != be.cbor_decode(bytes.fromhex("f97e00"))  # NaN
    assert be.cbor_decode(bytes.fromhex("5f42010243030405ff")).tobytes() == b"\x01\x02\x03\x04\x05"
    assert be.cbor_decode(bytes.fromhex("9f0102ff")) == [1, 2]
    assert be.cbor_decode(bytes.fromhex("bf6161f5ff")) == {"a": True}
    assert be.cbor_decode(cbor2.dumps(cbor2.CBORTag(0, "2024-01-01T00:00:00Z"))) == CborTag(0, "2024-01-01T00:00:00Z")
    assert be.cbor_decode(bytes.fromhex("f7")) is None
    be_arr = be.cbor_decode(cbor2.dumps(cbor2.CBORTag(66, np.arange(3, dtype=">u4").tobytes())))
    np.testing.assert_array_equal(be_arr, [0, 1, 2])
    f = be.cbor_decode(cbor2.dumps(cbor2.CBORTag(1040, [[2, 3], cbor2.CBORTag(64, bytes(range(6)))])))
    np.testing.assert_array_equal(f, np.arange(6, dtype=np.uint8).reshape(2, 3, order="F"))


@pytest.mark.parametrize("blob,what", [
    (b"", "end"), (b"\x1c", "reserved"), (b"\x5a\xff\xff\xff\xff", "end"), (b"\x82\x01", "end"),
    (b"\xff", "break"), (b"\x01\x02", "trailing"), (b"\x62\xff\xfe", "UTF-8"),
    (b"\xa1\x80\x01", "hashable"), (b"\xd8\x28\x01", "tag 40"), (b"\xd8\x46\x43abc", "multiple"),
    (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", "end"), (b"\x81" * 100 + b"\x00", "deep"),
    (b"\xd9\xdc\xb4\x83\x65bslz4\x04\x01", "56500"),
])
def test_walker_errors(be, blob, what):
    with pytest.raises(CorruptFrameError, match=what):
        be.cbor_decode(blob)


def test_stream2_round_trip_all_channels_and_compressions():
    rng = np.random.default_rng(4)
    for dtype in (np.uint8, np.uint16, np.uint32):
        chans = {n: rng.integers(0, 100, (13, 29)).astype(dtype) for n in ("threshold_1", "threshold_2", "difference")}
        for comp in ("bslz4", "lz4", "none"):
            (msg,) = stream2.encode_image(7, 3, chans, comp)
            out = stream2.decode(msg, nthreads=2)
            assert out.kind is Kind.DATA and out.image_id == 3 and out.fields["series_id"] == 7
            assert sorted(out.data) == sorted(chans)
            for name, arr in chans.items():
                np.testing.assert_array_equal(out.data[name], arr)
                assert out.data[name].dtype == dtype


def test_stream2_unaligned_payload_and_zero_copy_over_zmq():
    img = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48)
    (msg,) = stream2.encode_image(1, 0, img, "none", pad="x")  # odd-length key shifts the payload
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.PUSH) as push, ctx.socket(zmq.PULL) as pull:
        push.linger = 0
        port = push.bind_to_random_port("tcp://127.0.0.1")
        pull.connect(f"tcp://127.0.0.1:{port}")
        pull.setsockopt(zmq.RCVTIMEO, 5000)
        push.send(msg)
        frame = pull.recv(copy=False)
        data = stream2.decode_image([frame])["threshold_1"]
        np.testing.assert_array_equal(data, img)
        assert np.shares_memory(data, np.frombuffer(frame.buffer, np.uint8))
        assert not data.flags.writeable
    offset = msg.index(img.tobytes())
    assert offset % 4 != 0  # the premise: the uint32 payload sits unaligned in the message
    for shift in range(1, 4):  # force misalignment of the whole message
        buf = bytearray(shift) + msg
        view = memoryview(buf)[shift:]
        np.testing.assert_array_equal(stream2.decode(view).data["threshold_1"], img)
    (cmsg,) = stream2.encode_image(1, 0, img, "bslz4")
    buf = bytearray(1) + cmsg
    np.testing.assert_array_equal(stream2.decode(memoryview(buf)[1:]).data["threshold_1"], img)


def test_stream2_start_end_and_cutter_errors():
    ff = np.ones((4, 5), np.float32)
    (start,) = stream2.encode_start(9, ["threshold_1", "difference"], flatfield={"threshold_1": ff},
                                    pixel_mask={"threshold_1": np.zeros((4, 5), np.uint32)})
    msg = stream2.decode(start)
    assert msg.kind is Kind.START and msg.fields["channels"] == ["threshold_1", "difference"]
    np.testing.assert_array_equal(msg.fields["flatfield"]["threshold_1"], ff)
    cutter = stream2.Stream2Cutter()
    assert cutter.feed([start])[0].kind is Kind.START
    img = np.zeros((4, 5), np.uint16)
    cutter.feed(stream2.encode_image(9, 0, img))
    (u,) = cutter.feed(stream2.encode_image(9, 2, img))
    assert u.frame_number == 2 and u.meta["expected_frame"] == 1
    assert cutter.feed(stream2.encode_end(9))[0].kind is Kind.END
    for bad in ([b"\x01"], [cbor2.dumps({"type": "other"})], [start, start], [start[:-3]],
                [cbor2.dumps({"type": "image", "image_id": "x"})]):
        with pytest.raises(ProtocolError):
            cutter.feed(bad)
    with pytest.raises(ProtocolError):
        stream2.decode_image([start])


def test_stream2_compressed_array_checks():
    x = np.arange(80, dtype=np.uint16)
    from dranspose.codecs import bslz4_compress
    ca = CompressedArray("bslz4", 4, memoryview(bslz4_compress(x)), np.dtype(np.uint16), (80,))
    with pytest.raises(ProtocolError):
        stream2.decompress_array(ca)
    ca = CompressedArray("zstd", 2, memoryview(b""), np.dtype(np.uint16), (80,))
    with pytest.raises(ProtocolError):
        stream2.decompress_array(ca)
    ca = CompressedArray("bslz4", 2, memoryview(bslz4_compress(x.reshape(8, 10))), np.dtype(np.uint16), (8, 10), "F")
    np.testing.assert_array_equal(stream2.decompress_array(ca), x.reshape(8, 10, order="F"))
    out = np.empty((8, 10), np.uint16, order="F")
    assert stream2.decompress_array(ca, out=out) is out
    np.testing.assert_array_equal(out, x.reshape(8, 10, order="F"))
    assert math.prod(out.shape) == 80
