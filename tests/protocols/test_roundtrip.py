"""Synthetic encode -> (real socket ->) cut -> decode round trips, compat data classes, and the
gaps of PROTOCOLS §15 (window_counts, interrupted, AlbaEM key names, position-capture re-arm)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from dranspose.data.albaem import AlbaemData, AlbaemEnd, AlbaemStart
from dranspose.data.contrast import ContrastFinished, ContrastHeartbeat, ContrastRunning, ContrastStarted
from dranspose.data.lecroy import LECROY_TYPE, LecroyData, LecroyParsed, LecroyPrepare, LecroySeqStart
from dranspose.data.pcap import PCAPData, PCAPEnd, PCAPStart
from dranspose.data.positioncap import PositionCapEnd, PositionCapField, PositionCapStart, PositionCapValues
from dranspose.data.sardana import SardanaDataDescription, SardanaRecordData, SardanaRecordEnd
from dranspose.data.xspress3 import XspressEnd, XspressImage, XspressStart
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.middlewares import albaem as albaem_mw
from dranspose.middlewares import contrast as contrast_mw
from dranspose.middlewares import lecroy as lecroy_mw
from dranspose.middlewares import pcap as pcap_mw
from dranspose.middlewares import sardana as sardana_mw
from dranspose.middlewares import xspress as xspress_mw
from dranspose.middlewares.positioncap import PositioncapParser
from dranspose.middlewares.xspress import XspressParser
from dranspose.protocols import albaem, contrast, lecroy, pcap, sardana, xspress3
from tests.protocols.proto_helpers import cut, kinds, stream_over_zmq

RNG = np.random.default_rng(7)
EXTRA_TAGS = [
    "output_count_rate", "all_events", "all_good", "clock_ticks", "total_ticks",
    "reset_ticks", "event_width", "dead_time_correction", "window_counts",
]  # fmt: skip


def _xspress_series(n: int, n_ch: int = 4) -> tuple[list[list[bytes]], list[np.ndarray], list[list[np.ndarray]]]:
    msgs = [xspress3.encode_header("f.h5", limits=[[[0, 0]] * n_ch] * 2, extra_tags=EXTRA_TAGS)]
    spectra, metas = [], []
    for i in range(n):
        spec = RNG.integers(0, 50, size=(n_ch, 4096), dtype=np.uint32)
        meta = [
            RNG.random(n_ch), spec.sum(axis=1).astype(np.uint32) + 3, spec.sum(axis=1).astype(np.uint32),
            np.full(n_ch, 7999990, np.uint32), np.full(n_ch, 7999990, np.uint32), np.zeros(n_ch, np.uint32),
            np.full(n_ch, 6, np.int32), 1 + RNG.random(n_ch), RNG.integers(0, 9, (2, n_ch)).astype(np.uint32),
        ]  # fmt: skip
        msgs.append(xspress3.encode_image(i, spec, meta, exptime=0.05))
        spectra.append(spec)
        metas.append(meta)
    msgs.append(xspress3.encode_end())
    return msgs, spectra, metas


@pytest.mark.parametrize("form", ["multipart", "legacy"])
def test_xspress3_multipart_and_legacy_keep_window_counts(form: str) -> None:
    msgs, spectra, metas = _xspress_series(5)
    if form == "legacy":
        msgs = [m for msg in msgs for m in xspress3.encode_legacy(msg)]
    units = cut(xspress3.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert kinds(units) == ["START"] + ["DATA"] * 5 + ["END"]
    assert units[0].meta["extra_tags"] == EXTRA_TAGS
    parser = XspressParser()
    start = parser.parse(StreamData(typ="xspress", frames=units[0].frames))
    assert isinstance(start, XspressStart) and start.extra_tags == EXTRA_TAGS and len(start.limits) == 2
    for i, unit in enumerate(units[1:-1]):
        img = parser.parse(StreamData(typ="xspress", frames=unit.frames))
        assert isinstance(img, XspressImage) and img.frame == i
        assert np.array_equal(img.data, spectra[i])
        # the 9th entry is kept (gap §15.5), under the compat name and the header's name
        assert np.array_equal(img.meta["window_counts"], metas[i][8])
        assert img.meta["window_counts"].shape == (2, 4)
        assert np.array_equal(img.meta["AllGood"], img.data.sum(axis=1))
        assert img.meta["all_good"] is img.meta["AllGood"]
        assert np.array_equal(img.meta["dead_time_correction"], metas[i][7])
    # the stateless compat parse still names the 9th entry window_counts
    img = xspress_mw.parse(StreamData(typ="xspress", frames=units[1].frames))
    assert np.array_equal(img.meta["window_counts"], metas[0][8])


@pytest.mark.parametrize("lost", [1, 2])
def test_xspress3_legacy_resyncs_after_lost_message(lost: int) -> None:
    msgs, spectra, _ = _xspress_series(3)
    legacy = [m for msg in msgs for m in xspress3.encode_legacy(msg)]
    del legacy[1 + lost]  # histogram (1) or meta (2) of frame 0 is lost
    cutter = xspress3.CUTTER()
    units, errors = [], 0
    for m in legacy:
        try:
            units.extend(cutter.feed(m))
        except ProtocolError:
            errors += 1
    assert errors + cutter.dropped >= 1
    assert kinds(units) == ["START", "DATA", "DATA", "END"]
    assert [u.frame_number for u in units[1:-1]] == [1, 2]
    img = xspress_mw.parse(StreamData(typ="xspress", frames=units[2].frames))
    assert np.array_equal(img.data, spectra[2])
    # an image cut short by the end message: the end is not lost
    cutter = xspress3.CUTTER()
    tail = cut(cutter, [legacy[0], *xspress3.encode_legacy(msgs[3])[:1], xspress3.encode_end()])
    assert kinds(tail) == ["START", "END"] and cutter.dropped == 1


def test_xspress3_compat_classes_to_stream_data() -> None:
    img = XspressImage(frame=3, shape=(4, 10), exptime=0.1, type="float64", compression="none",
                       data=np.ones((4, 10)), meta={"ocr": 1})  # fmt: skip
    back = xspress_mw.parse(img.to_stream_data())
    assert back.frame == 3 and back.data.dtype == np.float64 and back.data.sum() == 40 and back.meta == {"ocr": 1}
    img.exptime = 0.5  # mutable
    assert xspress_mw.parse(img.to_stream_data()).exptime == 0.5
    assert isinstance(xspress_mw.parse(XspressStart(filename="").to_stream_data()), XspressStart)
    assert isinstance(xspress_mw.parse(XspressEnd().to_stream_data()), XspressEnd)
    assert json.loads(XspressEnd().model_dump_json()) == {"htype": "series_end"}
    with pytest.raises(ValueError):
        xspress_mw.parse(StreamData(typ="STINS", frames=[b"{}"]))


def test_pcap_split_and_compat_classes() -> None:
    arm = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cols = {"energy": list(np.linspace(8000, 9000, 23)), "I0": list(RNG.random(23))}
    msgs = pcap.encode_series(arm, cols, batch=6)
    assert len(msgs) == 2 + 4
    units = cut(pcap.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert len(units) == 25
    samples = [pcap_mw.parse(StreamData(typ="PCAP", frames=u.frames)) for u in units[1:-1]]
    assert [s.frame_number for s in samples] == list(range(23))
    assert [s.I0 for s in samples] == cols["I0"]
    assert pcap_mw.parse(StreamData(typ="PCAP", frames=units[0].frames)).arm_time == arm
    # compat classes
    for pkt in (PCAPStart(arm_time=arm), PCAPData(message_id=4, frame_number=9, energy=1.5), PCAPEnd(message_id=5)):
        back = pcap_mw.parse(pkt.to_stream_data())
        assert type(back) is type(pkt) and back == pkt
    with pytest.raises(ProtocolError, match="parts"):
        pcap.CUTTER().feed([b"{}", b"{}"])
    bad = {"message_id": 2, "message_type": "data", "version": 1, "frame_number": 0, "a": [1.0, 2.0], "b": [1.0]}
    with pytest.raises(ProtocolError, match="length"):
        pcap.CUTTER().feed([json.dumps(bad).encode()])


def test_positioncap_compat_classes_and_rearm() -> None:
    fields = [PositionCapField(name="PCAP.BITS0.Value", type="uint32"), PositionCapField(name="INENC1.VAL.Mean", type="double")]
    start = PositionCapStart(arm_time=datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    parser = PositioncapParser()
    assert parser.parse(start.to_stream_data(fields)) == start
    for f, v in zip(fields, (np.uint32(5), np.float64(0.25))):
        f.value = v
    values = PositionCapValues(fields={f.name: f for f in fields})
    back = parser.parse(values.to_stream_data())
    assert isinstance(back, PositionCapValues)
    assert back.fields["PCAP.BITS0.Value"].value == 5 and back.fields["INENC1.VAL.Mean"].value == 0.25
    assert isinstance(parser.parse(PositionCapEnd().to_stream_data()), PositionCapEnd)
    # re-arm with one field: old values lines no longer fit, the new ones do
    parser.parse(start.to_stream_data(fields[:1]))
    assert [f.name for f in parser.fields] == ["PCAP.BITS0.Value"]
    assert parser.parse(StreamData(typ="PCAP_RAW", frames=[b" 17\n"])).fields["PCAP.BITS0.Value"].value == 17
    with pytest.raises(ProtocolError):
        parser.parse(values.to_stream_data())
    assert PositionCapField(name="x", type="double").parse("1.5").value == 1.5
    with pytest.raises(ProtocolError):
        PositioncapParser().parse(StreamData(typ="PCAP_RAW", frames=[b" 1 2\n"]))  # values before a header


def test_contrast_interrupted_ends_the_run() -> None:
    msgs = [
        contrast.encode_heartbeat(),
        contrast.encode_started(5, "/data", "ascan x 0 1 2 0.1", {"x": 0.0}),
        contrast.encode_running({"x": 0.0, "det": {"roi": np.arange(3.0)}}, dt=0.1),
        contrast.encode_heartbeat(),
        contrast.encode_running({"x": 0.5, "det": {"roi": np.arange(3.0) + 1}}, dt=0.2),
        contrast.encode_finished(5, "/data", "ascan x 0 1 2 0.1", interrupted=True),
    ]
    units = cut(contrast.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert kinds(units) == ["START", "DATA", "DATA", "END"]
    end = contrast_mw.parse(StreamData(typ="contrast", frames=units[-1].frames))
    assert isinstance(end, ContrastFinished) and end.status == "interrupted" and end.interrupted
    point = contrast_mw.parse(StreamData(typ="contrast", frames=units[2].frames))
    assert point.x == 0.5 and np.array_equal(point.det["roi"], [1.0, 2.0, 3.0]) and point.dt == 0.2
    assert isinstance(contrast_mw.parse(StreamData(typ="contrast", frames=msgs[0])), ContrastHeartbeat)
    # compat classes, including numpy scalars in a point
    for pkt in (
        ContrastStarted(path="", scannr=4, description="stepscan"),
        ContrastRunning(pseudo={"x": np.ones(1)}, dt=0.4, i0=np.float64(2.5)),
        ContrastFinished(path="", scannr=4, description="stepscan"),
    ):
        back = contrast_mw.parse(pkt.to_stream_data())
        assert type(back) is type(pkt) and back.status == pkt.status
    back = contrast_mw.parse(ContrastRunning(pseudo={"x": np.ones(1)}, dt=0.4, i0=np.float64(2.5)).to_stream_data())
    assert back.i0 == 2.5 and np.array_equal(back.pseudo["x"], [1.0])


@pytest.mark.parametrize(("pattern", "style"), [("SUB", "channel"), ("PULL", "CHAN")])
def test_albaem_socket_and_key_variants(pattern: str, style: str) -> None:
    currents = RNG.random((3, 4)) * 1e-9
    msgs = [albaem.encode_start(1)]
    msgs += [albaem.encode_data(2 + i, i, currents[i], 0.5 * i, 10**18 + i, key_style=style) for i in range(3)]
    msgs.append(albaem.encode_end(5))
    units = cut(albaem.CUTTER(), stream_over_zmq(msgs, pattern))
    assert kinds(units) == ["START", "DATA", "DATA", "DATA", "END"]
    data = [albaem_mw.parse(StreamData(typ="albaem", frames=u.frames)) for u in units[1:-1]]
    for i, pkt in enumerate(data):
        assert isinstance(pkt, AlbaemData) and pkt.frame_number == i
        assert pkt.channels() == list(currents[i])
        assert pkt.acquisition_timestamp == 10**18 + i
    # the bare form without message_type (contrast's client): data, cut with has_start=False
    bare = [json.dumps({"timestamp": 1.5, "CHAN01": 1e-9, "CHAN02": 2e-9}).encode()]
    cutter = albaem.AlbaemCutter(has_start=False)
    assert cutter.has_start is False and kinds(cutter.feed(bare)) == ["DATA"]
    assert albaem.decode(bare).channel2 == 2e-9
    for pkt in (AlbaemStart(message_id=1), AlbaemData(message_id=2, frame_number=0, timestamp=1.0, channel1=3.0), AlbaemEnd(message_id=3)):
        assert albaem_mw.parse(pkt.to_stream_data()) == pkt


def test_sardana_roundtrip() -> None:
    for pkt in (
        SardanaDataDescription(serialno=1, scandir="/d", title="t", ref_moveables=["m"]),
        SardanaRecordData(timestamp=0.25, point_nb=0, m=1.0),
        SardanaRecordEnd(),
    ):
        assert sardana_mw.parse(pkt.to_stream_data()) == pkt
    with pytest.raises(ProtocolError):
        sardana.message_from_request("/v1/data_desc", b'{"type":"RecordData","serialno":1,"scandir":"","title":""}')
    with pytest.raises(ProtocolError):
        sardana.message_from_request("/v1/nothing", b"{}")
    assert sardana.message_from_request("/v1/record_end", b"") == [b'{"type":"RecordEnd"}']


def test_lecroy_sequential_mode() -> None:
    n_seg, n_pts, chans = 5, 100, [1, 3]
    waves = {(s, c): RNG.standard_normal((n_seg, n_pts)) for s in range(2) for c in chans}
    msgs = [lecroy.encode_prepare(0)]
    frame = 0
    for s in range(2):
        msgs.append(lecroy.encode_seqstart(frame, n_seg, s, chans))
        for c in chans:
            msgs.append(lecroy.encode_traces(c, frame, waves[(s, c)], [100.0 + s + k for k in range(n_seg)], ts=99.0))
            frame += 1
        msgs.append(lecroy.encode_seqend(frame))
    msgs.append(lecroy.encode_stop(frame, frame))
    units = cut(lecroy.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert [(u.kind.name, len(u.frames)) for u in units] == [("START", 1), ("DATA", 8), ("DATA", 8), ("END", 1)]
    for s, unit in enumerate(units[1:3]):
        seq = lecroy_mw.parse(StreamData(typ=LECROY_TYPE, frames=unit.frames))
        assert isinstance(seq, LecroyParsed) and seq.seqno == s and seq.ntriggers == n_seg
        for k, c in enumerate(chans):
            assert np.array_equal(seq.data[k], waves[(s, c)])
            assert seq.timestamps[k] == [100.0 + s + j for j in range(n_seg)]
        again = lecroy_mw.parse(seq.to_stream_data())
        assert again.seqno == s and all(np.array_equal(a, b) for a, b in zip(again.data, seq.data))
    # a PREPARE not immediately followed by SEQSTART gives no START
    units = cut(lecroy.CUTTER(), [lecroy.encode_prepare(0), lecroy.encode_stop(0, 0), lecroy.encode_seqstart(0, -1, 0, [1])])
    assert kinds(units) == ["END"]
    assert isinstance(lecroy_mw.parse(LecroyPrepare(frame=0).to_stream_data()), LecroyPrepare)
    assert isinstance(lecroy_mw.parse(LecroySeqStart(frame=0, channels=[1]).to_stream_data()), LecroySeqStart)
    assert isinstance(lecroy.decode(msgs[2]), LecroyData)
    with pytest.raises(ProtocolError, match="frames"):
        lecroy.decode(units[0].frames + msgs[2])  # STOP + a trace is no sequence
