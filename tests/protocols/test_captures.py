"""Every raw capture streamed over a real ZeroMQ socket pair into its cutter: unit counts of
PROTOCOLS §14 and decoded values."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone

import numpy as np
import pytest
import zmq

from dranspose.data.albaem import AlbaemData, AlbaemEnd, AlbaemStart
from dranspose.data.contrast import ContrastFinished, ContrastRunning, ContrastStarted
from dranspose.data.lecroy import LECROY_TYPE, LecroyEnd, LecroyParsed, LecroyPrepare
from dranspose.data.pcap import PCAPData, PCAPEnd, PCAPStart
from dranspose.data.xspress3 import XspressEnd, XspressImage, XspressStart
from dranspose.event import StreamData
from dranspose.middlewares import albaem as albaem_mw
from dranspose.middlewares import contrast as contrast_mw
from dranspose.middlewares import lecroy as lecroy_mw
from dranspose.middlewares import pcap as pcap_mw
from dranspose.middlewares import xspress as xspress_mw
from dranspose.protocols import albaem, contrast, lecroy, pcap, xspress3
from tests.protocols.proto_helpers import cut, kinds, read_capture, stream_over_zmq


def test_xspress3_capture_over_sub() -> None:
    msgs = read_capture("xspress3-dump.cbors")
    assert len(msgs) == 62
    assert xspress3.SOCKET == "SUB"
    received = stream_over_zmq(msgs, "SUB")
    assert all(isinstance(f, zmq.Frame) for m in received for f in m)
    units = cut(xspress3.CUTTER(), received)
    assert len(units) == 22
    assert kinds(units) == ["START"] + ["DATA"] * 20 + ["END"]
    assert [u.frame_number for u in units[1:-1]] == list(range(20))
    assert all(len(u.frames) == 3 for u in units[1:-1])
    # units reuse the received frames (zero-copy)
    assert units[1].frames[1] is received[2][0]

    start = xspress_mw.parse(StreamData(typ="xspress", frames=units[0].frames))
    assert isinstance(start, XspressStart)
    assert start.filename.endswith("scan_000002_xspress3.hdf5") and start.overwritable is False
    for i, unit in enumerate(units[1:-1]):
        img = xspress_mw.parse(StreamData(typ="xspress", frames=unit.frames))
        assert isinstance(img, XspressImage)
        assert img.frame == i and img.shape == [4, 4096] and img.exptime == pytest.approx(0.099999875)
        assert img.data.shape == (4, 4096) and img.data.dtype == np.uint32
        assert not img.data.flags.writeable
        # PROTOCOLS §6: each channel's histogram sum equals its AllGood count
        assert np.array_equal(img.data.sum(axis=1), img.meta["AllGood"])
        assert set(img.meta) == set(xspress3.META_NAMES)
        assert np.all(img.meta["ClockTicks"] > 7_000_000)
    assert isinstance(xspress_mw.parse(StreamData(typ="xspress", frames=units[-1].frames)), XspressEnd)


@pytest.mark.parametrize("pattern", ["SUB", "PULL"])
def test_pcap_capture_one_unit_per_sample(pattern: str) -> None:
    msgs = read_capture("pcap-zmq.cbors")
    assert len(msgs) == 102
    units = cut(pcap.CUTTER(), stream_over_zmq(msgs, pattern))
    assert len(units) == 1502
    assert kinds(units) == ["START"] + ["DATA"] * 1500 + ["END"]
    assert [u.frame_number for u in units[1:-1]] == list(range(1500))

    start = pcap_mw.parse(StreamData(typ="PCAP", frames=units[0].frames))
    assert isinstance(start, PCAPStart)
    assert start.arm_time == datetime(2024, 10, 7, 8, 49, 10, 627000, tzinfo=timezone.utc)
    # every sample equals the corresponding entry of its batch's columns
    expected: list[dict[str, float]] = []
    for msg in msgs[1:-1]:
        batch = json.loads(msg[0])
        cols = {k: v for k, v in batch.items() if isinstance(v, list)}
        for i in range(len(next(iter(cols.values())))):
            expected.append({k: v[i] for k, v in cols.items()} | {"message_id": batch["message_id"]})
    assert len(expected) == 1500
    for n, unit in enumerate(units[1:-1]):
        sample = pcap_mw.parse(StreamData(typ="PCAP", frames=unit.frames))
        assert isinstance(sample, PCAPData)
        assert sample.frame_number == n
        want = expected[n]
        assert sample.message_id == want.pop("message_id")
        assert sample.columns() == want
        assert getattr(sample, "INENC3.VAL.Mean") == want["INENC3.VAL.Mean"]
    end = pcap_mw.parse(StreamData(typ="PCAP", frames=units[-1].frames))
    assert isinstance(end, PCAPEnd) and end.message_id == 102


def test_contrast_capture_heartbeats_dropped() -> None:
    msgs = read_capture("contrast-dump.cbors")
    assert len(msgs) == 26
    units = cut(contrast.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert len(units) == 22
    assert kinds(units) == ["START"] + ["DATA"] * 20 + ["END"]
    packets = [contrast_mw.parse(StreamData(typ="contrast", frames=u.frames)) for u in units]
    start, points, end = packets[0], packets[1:-1], packets[-1]
    assert isinstance(start, ContrastStarted)
    assert start.scannr == 2 and start.description == "mesh sx -2 2 3 sy -2 2 4 0.1"
    assert start.path.endswith("diff_1130_stream_test/raw/dummy")
    assert len(start.snapshot) > 50
    assert all(isinstance(p, ContrastRunning) for p in points)
    # a mesh of 4 x 5 points: sx (4 positions) is the slow axis, sy (5 positions) the fast one
    sx = np.array([p.sx for p in points]).reshape(4, 5)
    sy = np.array([p.sy for p in points]).reshape(4, 5)
    assert np.allclose(sx, np.linspace(-2, 2, 4)[:, None], atol=0.01)
    assert np.allclose(sy, np.linspace(-2, 2, 5)[None, :], atol=0.01)
    assert points[0].pseudo["x"].shape == (1,) and points[0].pseudo["x"].dtype == np.float64
    assert points[0].xspress3["type"] == "Link"
    assert all(p.dt > 0 for p in points)
    assert isinstance(end, ContrastFinished) and end.status == "finished" and end.scannr == 2
    # the decoded values equal what an unrestricted unpickler gives (trusted capture)
    ref = pickle.loads(msgs[2][0])
    assert np.array_equal(points[0].panda0["INENC1.VAL_Mean"], ref["panda0"]["INENC1.VAL_Mean"])


@pytest.mark.parametrize("pattern", albaem.SOCKETS)
def test_albaem_capture_sub_and_pull(pattern: str) -> None:
    msgs = read_capture("albaem-dump.cbors")
    units = cut(albaem.CUTTER(), stream_over_zmq(msgs, pattern))
    assert kinds(units) == ["START", "DATA", "DATA", "DATA", "DATA", "END"]
    packets = [albaem_mw.parse(StreamData(typ="albaem", frames=u.frames)) for u in units]
    assert isinstance(packets[0], AlbaemStart) and isinstance(packets[-1], AlbaemEnd)
    assert packets[-1].detector_specific == {"read_overflow": False, "memory_overflow": False}
    data = packets[1:-1]
    assert all(isinstance(p, AlbaemData) for p in data)
    assert [p.frame_number for p in data] == [0, 1, 2, 3]
    assert [p.message_id for p in data] == [2, 3, 4, 5]
    assert data[0].timestamp == pytest.approx(7.72645192)
    assert data[0].channel3 == pytest.approx(2.5349278603830644e-10)
    assert all(abs(c) < 1e-8 for p in data for c in p.channels())


def test_lecroy_continuous_capture() -> None:
    msgs = read_capture("maui-02-continuous-3.cbor.gz")
    assert len(msgs) == 9
    units = cut(lecroy.CUTTER(), stream_over_zmq(msgs, "SUB"))
    assert [(u.kind.name, len(u.frames)) for u in units] == [("START", 1), ("DATA", 8), ("DATA", 8), ("END", 1)]
    packets = [lecroy_mw.parse(StreamData(typ=LECROY_TYPE, frames=u.frames)) for u in units]
    assert isinstance(packets[0], LecroyPrepare)
    assert isinstance(packets[-1], LecroyEnd) and packets[-1].frames == 4
    for seq, raw in zip(packets[1:3], (msgs[2:4], msgs[5:7])):
        assert isinstance(seq, LecroyParsed)
        assert seq.channels == [2, 4] and seq.ntriggers == -1
        assert [m.ch for m in seq.meta] == [2, 4]
        for k in range(2):
            assert seq.data[k].shape == (1, 8002)
            assert np.array_equal(seq.data[k], np.frombuffer(raw[k][1], "<f8").reshape(1, 8002))
            assert seq.timestamps[k] == pickle.loads(raw[k][2])
        assert seq.meta[0].horiz_interval == pytest.approx(1.25e-11, rel=1e-3)
    # continuous mode: the one SEQSTART frame is repeated in both sequences
    assert units[1].frames[0].bytes == units[2].frames[0].bytes == msgs[1][0]
