"""Every real capture streamed over a real socket into its ingester and through the pipeline,
with the event counts of PROTOCOLS §14; and a multi-source scan (STINS + PandA + contrast)."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from dranspose.dumps.dumpfile import read_messages
from dranspose.services.ingesters import resolve
from dranspose.sources.streamer import Streamer
from tests.cluster import NewStreamer, StartCluster

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"

CASES = [
    # capture, ingester class, typ, units (start + data + end)
    ("dump_xrd.cbors", "ZmqPullSingleIngester", "STINS", 11),
    ("eiger-small.cbors", "ZmqPullEigerLegacyIngester", "EIGER_LEGACY", 5),
    ("stream2-eiger1m-bslz4.cbors.gz", "ZmqPullStream2Ingester", None, 12),
    ("xspress3-dump.cbors", "ZmqSubXspressIngester", "xspress", 22),
    ("pcap-zmq.cbors", "ZmqSubPCAPIngester", "PCAP", 1502),
    ("contrast-dump.cbors", "ZmqSubContrastIngester", "contrast", 22),
    ("albaem-dump.cbors", "ZmqSubAlbaemIngester", "albaem", 6),
    ("maui-02-continuous-3.cbor.gz", "ZmqSubLecroyIngester", "lecroy_9fwdWp6Rq7", 4),
]


def play(streamer: Streamer, messages: list) -> threading.Thread:
    t = threading.Thread(target=lambda: (streamer.wait_for_peer(20), streamer.send(messages)), daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("capture, ingester, typ, units", CASES, ids=[c[0].split(".")[0] for c in CASES])
def test_capture_through_pipeline(
    start_cluster: StartCluster, new_streamer: NewStreamer, captures: Path, capture: str, ingester: str, typ: str | None, units: int
) -> None:
    pattern, cutter = resolve(ingester)
    messages = list(read_messages(str(captures / capture)))
    streamer = new_streamer(pattern="PUB" if pattern == "SUB" else "PUSH", hwm=0)
    c = start_cluster(WORKER, REDUCER, {"s": (streamer.endpoint, cutter)}, pattern=pattern, capacity=64)
    c.set_mapping({"s": [[{"tags": ["generic"], "constraint": i % 4}] for i in range(units - 2)]})
    sender = play(streamer, messages)
    progress = c.wait_finished(timeout=60)
    sender.join(10)
    assert progress["completed_events"] == units and progress["failed_events"] == 0
    results = c.reducer.hooks.instance.results
    data = sorted(r.event_number for r in results if 0 < r.event_number < units - 1)
    assert data == list(range(1, units - 1))  # every data unit became exactly one event
    expected_typ = typ or cutter().typ
    assert {t for r in results for t in r.payload["typs"].values()} == {expected_typ}
    assert c.get("/api/v1/status")["error_count"] == 0


def test_multi_source_scan_normalised_map(start_cluster: StartCluster, new_streamer: NewStreamer) -> None:
    """A camera (STINS), a PandA (PCAP over ZMQ) and contrast in one trigger map: the worker
    normalises an ROI sum by I0, the reducer publishes the map; checked against the inputs."""
    from tests.protocols import multisource_payload as payload

    scan = payload.make_scan()
    ingester_of = {"STINS": "ZmqPullSingleIngester", "PCAP": "ZmqSubPCAPIngester", "contrast": "ZmqSubContrastIngester"}
    streamers, streams = {}, {}
    for name, typ in scan.typs.items():
        pattern, cutter = resolve(ingester_of[typ])
        streamers[name] = new_streamer(pattern="PUB" if pattern == "SUB" else "PUSH", hwm=0)
        streams[name] = (streamers[name].endpoint, cutter, pattern)
    c = start_cluster("tests.protocols.multisource_payload:NormalizeWorker",
                      "tests.protocols.multisource_payload:MapReducer", streams, nworkers=2)
    c.set_mapping(scan.trigger_map())
    senders = [play(streamers[name], msgs) for name, msgs in scan.messages.items()]
    progress = c.wait_finished(timeout=60)
    for t in senders:
        t.join(10)
    assert progress["completed_events"] == scan.n_points + 2 and progress["failed_events"] == 0
    published = c.reducer.hooks.publish
    np.testing.assert_allclose(published["map"], scan.expected_map, rtol=1e-12)
    assert published["points"] == scan.n_points
    assert c.get("/api/v1/status")["error_count"] == 0


def test_position_capture_over_tcp_through_pipeline(start_cluster: StartCluster, exit_stack: ExitStack) -> None:
    """TcpPcapIngester connects to a PandA-like TCP server, sends the options line and cuts
    header / one event per line / END."""
    import socket
    from datetime import datetime, timezone

    from dranspose.data.positioncap import PositionCapField
    from dranspose.protocols import positioncap

    server = exit_stack.enter_context(socket.create_server(("127.0.0.1", 0)))
    port = server.getsockname()[1]
    fields = [PositionCapField(name="PCAP.TS_TRIG.Value", type="double"), PositionCapField(name="INENC1.VAL.Value", type="int32")]
    rows = [[0.1 * i, 10 * i] for i in range(25)]
    payload = positioncap.encode_stream(datetime(2026, 1, 1, tzinfo=timezone.utc), fields, rows)
    served = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            assert conn.recv(64).endswith(b"\n")  # the options line
            conn.sendall(b"OK\n")
            served.wait(20)  # the scan's mapping is set: send the experiment in small chunks
            for i in range(0, len(payload), 37):
                conn.sendall(payload[i : i + 37])
            time.sleep(1)

    import time

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    pattern, cutter = resolve("TcpPcapIngester")
    c = start_cluster(WORKER, REDUCER, {"pcap": (f"tcp://127.0.0.1:{port}", cutter, pattern)})
    c.set_mapping({"pcap": [[{"tags": ["generic"], "constraint": i % 2}] for i in range(len(rows))]})
    served.set()
    progress = c.wait_finished()
    assert progress["completed_events"] == len(rows) + 2
    from dranspose.middlewares.positioncap import PositioncapParser
    from dranspose.event import StreamData

    parser = PositioncapParser()
    by_event = {r.event_number: r.payload for r in c.reducer.hooks.instance.results}
    parser.parse(StreamData(typ="PCAP_RAW", frames=by_event[0]["frames"]["pcap"]))
    values = [parser.parse(StreamData(typ="PCAP_RAW", frames=by_event[i + 1]["frames"]["pcap"])) for i in range(len(rows))]
    assert [v.fields["INENC1.VAL.Value"].value for v in values] == [row[1] for row in rows]


def test_sardana_over_http_through_pipeline(start_cluster: StartCluster) -> None:
    """HttpSardanaIngester serves the Sardana endpoints; each POSTed record is one event."""
    import httpx

    from dranspose.transport.sockets import free_tcp_port

    port = free_tcp_port()
    pattern, cutter = resolve("HttpSardanaIngester")
    c = start_cluster(WORKER, REDUCER, {"sardana": (f"http://127.0.0.1:{port}", cutter, pattern)})
    n = 6
    c.set_mapping({"sardana": [[{"tags": ["generic"], "constraint": i}] for i in range(n)]})
    base = f"http://127.0.0.1:{port}"
    desc = {"type": "DataDescription", "serialno": 3, "scandir": "/data", "title": "ascan m 0 1 5 0.1"}
    assert httpx.post(f"{base}/v1/data_desc", json=desc).status_code == 200
    assert httpx.post(f"{base}/v1/custom_data", json={"x": 1}).json() == {"accepted": False}
    bad = httpx.post(f"{base}/v1/record_data", content=b"{not json")
    assert bad.status_code == 422
    for i in range(n):
        record = {"type": "RecordData", "timestamp": 0.1 * i, "point_nb": i, "m": float(i)}
        assert httpx.post(f"{base}/v1/record_data", json=record).status_code == 200
    assert httpx.post(f"{base}/v1/record_end", json={"type": "RecordEnd"}).status_code == 200
    progress = c.wait_finished()
    assert progress["completed_events"] == n + 2
    from dranspose.event import StreamData
    from dranspose.middlewares.sardana import parse

    by_event = {r.event_number: r.payload for r in c.reducer.hooks.instance.results}
    points = [parse(StreamData(typ="sardana", frames=by_event[i + 1]["frames"]["sardana"])) for i in range(n)]
    assert [p.point_nb for p in points] == list(range(n))
