"""Eiger v1 synthetic round trips for every part count, and the compat data/middleware modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import BaseModel

from dranspose.data.eiger_legacy import EigerLegacyEnd, EigerLegacyHeader, EigerLegacyImage, EigerLegacyPacket
from dranspose.data.stream1 import Stream1Data, Stream1End, Stream1Packet, Stream1Start
from dranspose.errors import CorruptFrameError, ProtocolError
from dranspose.event import StreamData
from dranspose.middlewares import eiger_legacy as mel
from dranspose.middlewares import stream1 as ms
from dranspose.protocols import eiger_legacy as el
from dranspose.protocols.base import Kind


def _arrays():
    return dict(flatfield=np.ones((6, 5), np.float32), pixel_mask=np.zeros((6, 5), np.uint32),
                countrate=np.arange(8, dtype=np.float32).reshape(4, 2))


@pytest.mark.parametrize("detail,appendix,parts", [
    ("none", None, 1), ("none", {"a": 1}, 2), ("basic", None, 2), ("basic", {"a": 1}, 3),
    ("all", None, 8), ("all", {"filename": "x.h5"}, 9),
])
def test_header_part_counts(detail, appendix, parts):
    frames = el.encode_header(4, {"nimages": 2}, header_detail=detail, appendix=appendix, **_arrays())
    assert len(frames) == parts
    (unit,) = el.EigerLegacyCutter().feed(frames)
    assert unit.kind is Kind.START
    hdr = el.decode_header(frames)
    assert hdr.appendix == appendix
    if detail != "none":
        assert hdr.config == {"nimages": 2}
    if detail == "all":
        np.testing.assert_array_equal(hdr.arrays["flatfield"], _arrays()["flatfield"])
        assert hdr.arrays["countrate_table"].shape == (4, 2)
    packet = mel.parse(StreamData(typ="EIGER_LEGACY", frames=frames))
    assert isinstance(packet, EigerLegacyHeader) and packet.series == 4
    assert getattr(packet, "appendix", None) == appendix
    assert (getattr(packet, "info", None) is not None) == (detail != "none")


@pytest.mark.parametrize("encoding", [None, "lz4<", "<"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
def test_image_encodings_and_part_counts(encoding, dtype):
    img = (np.arange(37 * 23) % 251).astype(dtype).reshape(37, 23)
    for appendix in (None, {"k": 1}):
        frames = el.encode_image(2, 5, img, encoding, appendix=appendix)
        assert len(frames) == (4 if appendix is None else 5)
        assert el.verify_hash(frames)
        assert json.loads(frames[1])["shape"] == [23, 37]
        np.testing.assert_array_equal(el.decode_image(frames, nthreads=2), img)
        msg = el.decode(frames)
        assert msg.config["htype"] == "dconfig-1.0" and msg.appendix == appendix
        packet = mel.parse(StreamData(typ="EIGER_LEGACY", frames=frames))
        assert isinstance(packet, EigerLegacyImage) and packet.frame == 5
        assert packet.data["buffer"] == frames[2]
        again = packet.to_stream_data()
        np.testing.assert_array_equal(el.decode_image(again.frames), img)


def test_raw_lz4_v1_without_framing():
    import lz4.block

    img = np.arange(100, dtype=np.uint16).reshape(10, 10)
    frames = el.encode_image(1, 0, img, "<")
    blob = lz4.block.compress(img.tobytes(), store_size=False)
    dmeta = json.loads(frames[1])
    dmeta.update(encoding="lz4<", size=len(blob))
    frames = [frames[0], json.dumps(dmeta).encode(), blob, frames[3]]
    np.testing.assert_array_equal(el.decode_image(frames), img)


def test_eiger_cutter_and_decoder_errors():
    cutter = el.EigerLegacyCutter()
    img = np.zeros((4, 4), np.uint32)
    good = el.encode_image(1, 0, img)
    for bad in (good[:3], good + [b"{}", b"{}"], [b"[1]"], [b'{"htype":"dimage-1.0","frame":"a"}'] + good[1:],
                el.encode_end(1) + [b"x"], el.encode_header(1)[:1] * 4):
        with pytest.raises(ProtocolError):
            cutter.feed(bad)
    assert cutter.feed(good)[0].frame_number == 0
    (u,) = cutter.feed(el.encode_image(1, 3, img))
    assert u.meta["expected_frame"] == 1
    corrupt = list(good)
    corrupt[2] = good[2][:-1]
    with pytest.raises(CorruptFrameError):
        el.decode_image(corrupt)
    wrong_bits = list(good)
    wrong_bits[1] = good[1].replace(b"bs32", b"bs16")
    with pytest.raises(ProtocolError):
        el.decode_image(wrong_bits)
    with pytest.raises(ProtocolError):
        mel.parse(StreamData(typ="STINS", frames=good))
    end = mel.parse(StreamData(typ="EIGER_LEGACY", frames=el.encode_end(3)))
    assert isinstance(end, EigerLegacyEnd) and end.to_stream_data().frames == el.encode_end(3)


def test_compat_models_are_mutable_pydantic_with_extras():
    for cls, kw in ((Stream1Start, dict(msg_number=0, filename="f")),
                    (Stream1Data, dict(msg_number=1, frame=0, shape=[2], type="uint8", compression="none")),
                    (Stream1End, dict(msg_number=2)), (EigerLegacyHeader, {}), (EigerLegacyImage, dict(frame=1)),
                    (EigerLegacyEnd, {})):
        obj = cls(**kw, custom=5)
        assert isinstance(obj, BaseModel) and obj.custom == 5
        obj.custom = 6
        assert json.loads(obj.model_dump_json())["custom"] == 6
        assert obj.to_stream_data().frames
    assert isinstance(Stream1Packet.validate_json(b'{"htype":"series_end","msg_number":3}'), Stream1End)
    assert isinstance(EigerLegacyPacket.validate_python({"htype": "dimage-1.0", "frame": 2}), EigerLegacyImage)


def test_stream1_parse_keeps_old_behaviour():
    img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    raw = Stream1Data(msg_number=1, frame=0, shape=[3, 4], type="uint16", compression="none", data=img)
    packet = ms.parse(raw.to_stream_data())
    np.testing.assert_array_equal(packet.data, img)
    assert not packet.data.flags.writeable
    comp = Stream1Data(msg_number=1, frame=0, shape=[3, 4], type="uint16", compression="bslz4", data=img)
    sd = comp.to_stream_data()
    packet = ms.parse(sd)
    assert not hasattr(packet, "data")  # compressed: users decompress frames[1] themselves
    from dranspose.codecs import bslz4_decompress
    np.testing.assert_array_equal(bslz4_decompress(sd.frames[1], np.uint16, (3, 4)), img)
    np.testing.assert_array_equal(ms.parse_decompressed(sd).data, img)
    start = ms.parse(Stream1Start(msg_number=0, filename="a.h5", extra=1).to_stream_data())
    assert start.filename == "a.h5" and start.extra == 1
    with pytest.raises(ProtocolError):
        ms.parse(StreamData(typ="STINS", frames=[b'{"htype":"image"}']))
    with pytest.raises(ProtocolError):
        ms.parse(StreamData(typ="EIGER_LEGACY", frames=[b"{}"]))
    with pytest.raises(ValueError):
        ms.parse(StreamData(typ="STINS", frames=[b"nope"]))
