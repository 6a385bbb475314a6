"""STINS: synthetic encode -> real ZeroMQ -> cutter and decoder (zero-copy for "none")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zmq

from dranspose.errors import CorruptFrameError, ProtocolError
from dranspose.protocols import stins
from dranspose.protocols.base import Kind


@pytest.fixture
def pair():
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    pull = ctx.socket(zmq.PULL)
    pull.connect(f"tcp://127.0.0.1:{port}")
    pull.setsockopt(zmq.RCVTIMEO, 5000)
    yield push, pull
    push.close(0)
    pull.close(0)
    ctx.term()


def test_series_over_zmq_is_cut_and_decoded(pair):
    push, pull = pair
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 1000, (31, 17), dtype=np.uint16) for _ in range(3)]
    push.send_multipart(stins.encode_header(0, "out.h5", extra_key=1))
    for i, img in enumerate(images):
        push.send_multipart(stins.encode_image(i + 1, i, img, "bslz4" if i % 2 else "none"))
    push.send_multipart(stins.encode_end(4))

    cutter = stins.StinsCutter()
    units = []
    for _ in range(5):
        units += cutter.feed(pull.recv_multipart(copy=False))
    assert [u.kind for u in units] == [Kind.START, Kind.DATA, Kind.DATA, Kind.DATA, Kind.END]
    assert [u.frame_number for u in units[1:4]] == [0, 1, 2]
    assert json.loads(units[0].frames[0].bytes)["filename"] == "out.h5"
    for unit, img in zip(units[1:4], images):
        out = stins.decode_image(unit.frames)
        np.testing.assert_array_equal(out, img)
        assert out.dtype == np.uint16 and out.shape == (31, 17)


def test_uncompressed_image_shares_memory_with_zmq_frame(pair):
    push, pull = pair
    img = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    push.send_multipart(stins.encode_image(5, 7, img))
    frames = pull.recv_multipart(copy=False)
    assert isinstance(frames[1], zmq.Frame)
    arr = stins.decode_image(frames)
    np.testing.assert_array_equal(arr, img)
    assert np.shares_memory(arr, np.frombuffer(frames[1].buffer, dtype=np.uint8))
    assert not arr.flags.writeable


def test_decode_headerless_bslz4_and_lz4():
    import dranspose.codecs as codecs

    img = (np.arange(1000, dtype=np.int32) % 7).reshape(40, 25)
    parts = stins.encode_image(1, 0, img, "bslz4")
    headerless = parts[1][12:]
    np.testing.assert_array_equal(stins.decode_image([parts[0], headerless]), img)
    parts = stins.encode_image(1, 0, img, "lz4")
    np.testing.assert_array_equal(stins.decode_image(parts), img)
    assert codecs.lz4_decompress(parts[1], np.int32, (40, 25)).sum() == img.sum()


def test_multi_blob_images():
    a = np.arange(2 * 6 * 5, dtype=np.uint32).reshape(2, 6, 5)
    p0 = stins.encode_image(1, 3, a[0], "bslz4")
    p1 = stins.encode_image(1, 3, a[1], "none")
    meta = json.loads(p0[0])
    meta.update(shape=[2, 6, 5], chunks=[1, 6, 5], compression="bslz4")
    chunked = [json.dumps(meta).encode(), p0[1], stins.encode_image(1, 3, a[1], "bslz4")[1]]
    np.testing.assert_array_equal(stins.decode_image(chunked), a)
    stacked = [p1[0], p1[1], a[0].tobytes()]
    out = stins.decode_image(stacked)
    assert out.shape == (2, 6, 5)
    np.testing.assert_array_equal(out[0], a[1])


def test_cutter_rejects_malformed_and_flags_gaps():
    cutter = stins.StinsCutter()
    with pytest.raises(ProtocolError):
        cutter.feed([b"not json"])
    with pytest.raises(ProtocolError):
        cutter.feed([b'{"htype":"bogus"}'])
    with pytest.raises(ProtocolError):
        cutter.feed([b'{"htype":"image","frame":1,"shape":[2],"type":"uint8","compression":"none"}'])
    with pytest.raises(ProtocolError):
        cutter.feed([b'{"htype":"image","frame":"x","shape":[2],"type":"uint8"}', b"ab"])
    img = np.zeros(4, np.uint8)
    cutter.feed(stins.encode_header(0))
    cutter.feed(stins.encode_image(1, 0, img))
    (unit,) = cutter.feed(stins.encode_image(2, 2, img))
    assert unit.meta["expected_frame"] == 1 and cutter.gaps.gaps == 1
    cutter.reset()
    (unit,) = cutter.feed(stins.encode_image(3, 9, img))
    assert "expected_frame" not in unit.meta


def test_decode_bad_blobs_raise_documented_errors():
    img = np.arange(100, dtype=np.uint16)
    parts = stins.encode_image(1, 0, img, "none")
    with pytest.raises(ProtocolError):
        stins.decode_image([parts[0], parts[1][:-2]])
    parts = stins.encode_image(1, 0, img, "bslz4")
    with pytest.raises(CorruptFrameError):
        stins.decode_image([parts[0], parts[1][:-5]])
