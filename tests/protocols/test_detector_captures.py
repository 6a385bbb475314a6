"""Real captures through both backends: Eiger v1 dump, DECTRIS stream v2, eiger-small
(truncated blobs must give a clean CorruptFrameError), the STINS tutorial dump."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dranspose._reference.cbor_types import CompressedArray
from dranspose.codecs import bslz4 as cb
from dranspose.errors import CorruptFrameError
from dranspose.event import StreamData
from dranspose.middlewares import eiger_legacy as mel
from dranspose.middlewares import stream1 as ms
from dranspose.protocols import eiger_legacy, stins, stream2
from dranspose.protocols.base import Kind


def test_eiger_legacy_dump_decodes_on_both_backends(be, eiger1m):
    typ, header = eiger1m[0]
    assert typ == "EIGER_LEGACY" and len(header) == 9
    hdr = eiger_legacy.decode_header(header)
    assert hdr.arrays["flatfield"].shape == (1065, 1030)
    assert hdr.arrays["countrate_table"].shape == (4000, 2)
    cutter = eiger_legacy.EigerLegacyCutter()
    assert cutter.feed(header)[0].kind is Kind.START
    first = None
    for i, (_, frames) in enumerate(eiger1m[1:4]):
        assert len(frames) == 4
        (unit,) = cutter.feed(frames)
        assert unit.kind is Kind.DATA and unit.frame_number == i
        assert eiger_legacy.verify_hash(frames)
        info = eiger_legacy.parse_image_meta(frames)
        img = cb.decompress(be, frames[2], np.uint32, info.shape, nthreads=2)
        assert img.shape == (1065, 1030)
        gaps = img == 0xFFFFFFFF
        assert 30000 < gaps.sum() < 50000  # module gaps are masked
        assert img[~gaps].max() < 1000
        first = img if first is None else first
    assert cutter.gaps.gaps == 0
    np.testing.assert_array_equal(eiger_legacy.decode_image(eiger1m[1][1]), first)


def test_stream2_capture(be, stream2_capture):
    msgs = stream2_capture
    assert len(msgs) == 12 and all(len(m) == 1 for m in msgs)
    start = be.cbor_decode(msgs[0][0])
    assert start["type"] == "start" and start["channels"] == ["threshold_1"]
    ff = start["flatfield"]["threshold_1"]
    assert ff.shape == (1065, 1030) and ff.dtype == np.float32
    assert np.shares_memory(ff, np.frombuffer(msgs[0][0], np.uint8))
    assert start["countrate_correction_lookup_table"].size == 65536
    images = []
    for msg in msgs[1:11]:
        fields = be.cbor_decode(msg[0])
        ca = fields["data"]["threshold_1"]
        assert isinstance(ca, CompressedArray) and ca.algorithm == "bslz4" and ca.elem_size == 4
        img = cb.decompress(be, ca.data, ca.dtype, ca.shape)
        images.append(img)
        assert img.shape == (1065, 1030)
    assert be.cbor_decode(msgs[11][0])["type"] == "end"
    decoded = [stream2.decode(m[0], nthreads=2).data["threshold_1"] for m in msgs[1:11]]
    for a, b in zip(images, decoded):
        np.testing.assert_array_equal(a, b)
    cutter = stream2.Stream2Cutter()
    kinds = [u.kind for m in msgs for u in cutter.feed(m)]
    assert kinds == [Kind.START] + [Kind.DATA] * 10 + [Kind.END]


def test_stream2_reused_buffer(stream2_capture):
    dec = stream2.Stream2Decoder(nthreads=2)
    a = dec.decode(stream2_capture[1][0]).data["threshold_1"]
    first = a.copy()
    b = dec.decode(stream2_capture[2][0]).data["threshold_1"]
    assert a is b  # the same buffer, refilled
    assert not np.array_equal(first, b) or first.sum() == b.sum()


def test_eiger_small_truncated_blobs_give_clean_errors(be, eiger_small):
    header, *images, end = eiger_small
    assert len(header) == 9 and [len(m) for m in images] == [5, 5, 5] and len(end) == 1
    hdr = eiger_legacy.decode_header(header, arrays=False)
    assert hdr.config["x_pixels_in_detector"] == 3108
    with pytest.raises(CorruptFrameError):
        eiger_legacy.decode_header(header)
    for frames in images:
        with pytest.raises(CorruptFrameError):
            eiger_legacy.decode_image(frames)
        info = eiger_legacy.parse_image_meta(frames)
        assert info.shape == (3262, 3108)
        with pytest.raises(CorruptFrameError) as exc:  # the blob itself, ignoring `size`
            cb.decompress(be, frames[2], np.uint32, info.shape, nthreads=2)
        assert exc.value.offset is not None and exc.value.offset <= 20000
        assert json.loads(frames[1])["encoding"] == "bs32-lz4<"
        assert json.loads(frames[0])["hash"] == hashlib.md5(frames[1]).hexdigest()
    packets = [mel.parse(StreamData(typ="EIGER_LEGACY", frames=m)) for m in eiger_small]
    assert packets[0].info["nimages"] == 3 and "collect_dict" in packets[0].appendix
    assert packets[1].data["buffer"] == images[0][2] and packets[1].config["htype"] == "dconfig-1.0"
    assert packets[-1].series == 6


def test_xrd_dump_through_compat_and_cutter(xrd_dump):
    cutter = stins.StinsCutter()
    for i, (typ, frames) in enumerate(xrd_dump):
        assert typ == "STINS"
        packet = ms.parse(StreamData(typ=typ, frames=frames))
        (unit,) = cutter.feed(frames)
        if 0 < i < len(xrd_dump) - 1:
            assert packet.data.shape == (10, 10) and packet.data.dtype == np.uint16
            assert not packet.data.flags.writeable
            np.testing.assert_array_equal(stins.decode_image(frames), packet.data)
            assert unit.frame_number == i - 1
    assert type(packet).__name__ == "Stream1End"
