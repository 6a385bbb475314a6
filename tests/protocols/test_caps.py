"""Per-protocol caps (issue 11): position-capture lines and headers, PCAP fields and samples,
LeCroy traces. Hostile input gets a ProtocolError (or is recorded and skipped by the TCP
splitter) and never grows memory without bound; the good data around it still arrives."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import datetime, timezone

import numpy as np
import pytest

from dranspose.data.positioncap import PositionCapField
from dranspose.errors import ProtocolError
from dranspose.protocols import lecroy, pcap, positioncap
from dranspose.services.upstreams import TcpUpstream
from tests.protocols.proto_helpers import TcpServer

ARM = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
FIELDS = [PositionCapField(name="PCAP.TS_TRIG.Value", type="double"), PositionCapField(name="A.B.Value", type="uint32")]
GOOD = positioncap.encode_stream(ARM, FIELDS, [[0.5, 1], [1.0, 2]])


def _split(data: bytes, chunk: int) -> tuple[list[bytes], list[str]]:
    splitter = positioncap.PositionCapSplitter(expect_ok=False)
    out: list[bytes] = []
    errors: list[str] = []
    for i in range(0, len(data), chunk):
        out += splitter.feed(data[i : i + chunk])
        errors += [str(e) for e in splitter.take_errors()]
    return out, errors


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_positioncap_overlong_line_is_dropped_and_the_next_experiment_arrives(chunk: int) -> None:
    hostile = b" " + b"9" * (positioncap.MAX_LINE * 3) + b"\n"
    out, errors = _split(GOOD[:-20] + hostile + GOOD, chunk)
    assert any("longer than" in e for e in errors)
    assert out[-4:] == [GOOD.split(b"\n\n")[0] + b"\n\n", b" 0.5 1\n", b" 1.0 2\n", b"END 2 Ok\n"]


def test_positioncap_header_lines_are_capped() -> None:
    header = b"arm_time: 2024-05-01T12:00:00Z\n" + b"x: y\n" * (positioncap.MAX_HEADER_LINES + 5)
    splitter = positioncap.PositionCapSplitter(expect_ok=False)
    tracemalloc.start()
    for _ in range(20):  # twenty endless headers: nothing piles up
        splitter.feed(header)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * len(header) + (1 << 20)
    errors = splitter.take_errors()
    assert len(errors) == 20 and all("header longer than" in str(e) for e in errors)
    out = splitter.feed(GOOD)
    assert len(out) == 4 and out[0].startswith(b"arm_time:")


def test_positioncap_partial_line_memory_is_bounded() -> None:
    splitter = positioncap.PositionCapSplitter(expect_ok=False)
    blob = b"x" * 65536
    for _ in range(64):  # 4 MiB without a newline
        assert splitter.feed(blob) == []
    assert len(splitter._buf) <= positioncap.MAX_LINE
    assert len(splitter.take_errors()) == 1


def test_tcp_upstream_never_raises_on_hostile_bytes() -> None:
    """The splitter's problems never escape TcpUpstream.receive (the ingester loop): they are
    counted and the stream goes on."""
    payload = (
        b"ERR nope\n"
        + b"arm_time: 2024-05-01T12:00:00Z\n"
        + b"k: v\n" * (positioncap.MAX_HEADER_LINES + 1)
        + b"\xff" * (positioncap.MAX_LINE + 10)
        + b"\n"
        + GOOD
    )
    server = TcpServer(payload, chunk=5000)
    upstream = TcpUpstream(f"tcp://127.0.0.1:{server.port}")
    messages: list[bytes] = []
    deadline = time.monotonic() + 10
    try:
        while upstream.pollable is not None and time.monotonic() < deadline:
            for msg in upstream.receive():
                messages += msg
            time.sleep(0.001)
    finally:
        upstream.close()
        server.join()
    assert upstream.malformed == 3  # refusal, header too long, line too long
    assert len(messages) == 4 and messages[-1] == b"END 2 Ok\n"


def _pcap(msg: dict[str, object]) -> list[bytes]:
    return [json.dumps(msg).encode()]


def test_pcap_caps() -> None:
    base = {"message_id": 2, "message_type": "data", "version": 1, "frame_number": 0}
    with pytest.raises(ProtocolError, match="fields"):
        pcap.CUTTER().feed(_pcap({**base, **{f"F{i}": [1.0] for i in range(pcap.MAX_FIELDS + 1)}}))
    with pytest.raises(ProtocolError, match="samples"):
        pcap.CUTTER().feed(_pcap({**base, "A": [0] * (pcap.MAX_SAMPLES + 1)}))
    # 1 MB of scalar copied into 2000 samples would make 2 GB: refused before building anything
    with pytest.raises(ProtocolError, match="scalars"):
        pcap.CUTTER().feed(_pcap({**base, "blob": "x" * 1_000_000, "A": list(range(2000))}))
    units = pcap.CUTTER().feed(_pcap({**base, "A": list(range(100)), "B": [0.5] * 100}))
    assert [u.frame_number for u in units] == list(range(100))


def _trace(ch: int) -> list[bytes]:
    return lecroy.encode_traces(ch, 0, np.zeros((1, 4)), [1.0])


def test_lecroy_traces_per_sequence_are_capped() -> None:
    cutter = lecroy.CUTTER()
    assert cutter.feed(lecroy.encode_prepare()) == []
    assert [u.kind.value for u in cutter.feed(lecroy.encode_seqstart(0, -1, 0, [1, 2]))] == ["start"]
    cutter.feed(_trace(1))
    cutter.feed(_trace(2))
    with pytest.raises(ProtocolError, match="more traces"):
        cutter.feed(_trace(3))
    assert cutter._traces == []  # the sequence was dropped, nothing piles up
    for _ in range(1000):  # an endless stream of traces without SEQEND stays bounded
        try:
            cutter.feed(_trace(1))
        except ProtocolError:
            pass
        assert len(cutter._traces) <= 6
    with pytest.raises(ProtocolError, match="channels"):
        cutter.feed(lecroy.encode_seqstart(0, -1, 0, list(range(lecroy.MAX_CHANNELS + 1))))
    with pytest.raises(ProtocolError, match="lecroy trace before any SEQSTART"):
        cutter.feed(_trace(1))


def test_tcp_ingester_survives_hostile_position_capture(redis_url: str) -> None:
    """As deployed: a TcpPcapIngester stream (in a real ingester, real Redis) gets a refusal, an
    over-long header and an over-long line before a good experiment: the scan completes and the
    recoveries are counted as malformed in the status."""
    from tests.cluster import Cluster
    from tests.core.test_pipeline import REDUCER, WORKER, vw

    payload = (
        b"ERR nope\n"
        + b"arm_time: 2024-05-01T12:00:00Z\n"
        + b"k: v\n" * (positioncap.MAX_HEADER_LINES + 1)
        + b" 1" * positioncap.MAX_LINE
        + b"\n"
        + GOOD
    )
    server = TcpServer(payload, chunk=4096)
    cluster = Cluster(
        redis_url, WORKER, REDUCER, {"pc": (f"tcp://127.0.0.1:{server.port}", positioncap.CUTTER, "TCP")}
    ).start()
    try:
        cluster.set_mapping({"pc": [vw(i) for i in range(2)]})
        progress = cluster.wait_finished()
        assert progress["completed_events"] == 4
        cluster.wait_until(
            lambda: cluster.get("/api/v1/status")["ingesters"]["pc-ingester"]["pc"]["malformed"] >= 3, "counted"
        )
    finally:
        cluster.stop()
        server.join()
