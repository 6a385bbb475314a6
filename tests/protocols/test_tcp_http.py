"""Position capture over a real TCP connection and Sardana bodies over real HTTP."""

from __future__ import annotations

import http.server
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator

import httpx
import pytest

from dranspose.data.positioncap import PositionCapEnd, PositionCapField, PositionCapStart, PositionCapValues
from dranspose.data.sardana import SardanaDataDescription, SardanaRecordData, SardanaRecordEnd
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.middlewares.positioncap import PositioncapParser
from dranspose.middlewares.sardana import parse as sardana_parse
from dranspose.protocols import positioncap, sardana
from tests.protocols.proto_helpers import TcpServer, cut, kinds

ARM1 = datetime(2024, 10, 7, 8, 49, 10, 627000, tzinfo=timezone.utc)
ARM2 = datetime(2024, 10, 7, 9, 0, 0, tzinfo=timezone.utc)
FIELDS1 = [
    PositionCapField(name="PCAP.BITS0.Value", type="uint32"),
    PositionCapField(name="INENC1.VAL.Mean", type="double"),
    PositionCapField(name="PCAP.TS_TRIG.Value", type="double"),
]
FIELDS2 = [PositionCapField(name="PCAP.TS_TRIG.Value", type="double"), PositionCapField(name="COUNTER1.OUT.Max", type="int32")]
ROWS1 = [[301989857 + i, 0.32175968 * i, 0.1 * (i + 1)] for i in range(25)]
ROWS2 = [[0.5 * (i + 1), -i] for i in range(7)]


def _receive(port: int) -> list[bytes]:
    splitter = positioncap.PositionCapSplitter()
    messages: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(positioncap.OPTIONS_LINE)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            messages.extend(splitter.feed(chunk))
    return messages


@pytest.mark.parametrize("chunk", [1, 13, 65536])
def test_positioncap_two_arms_over_tcp(chunk: int) -> None:
    assert positioncap.SOCKET == "TCP"
    payload = (
        positioncap.OK_REPLY
        + b"stale line from a previous arm\n"
        + positioncap.encode_stream(ARM1, FIELDS1, ROWS1)
        + positioncap.encode_stream(ARM2, FIELDS2, ROWS2, status="Disarmed")
    )
    server = TcpServer(payload, chunk)
    messages = _receive(server.port)
    server.join()
    assert server.options == b"\n"
    cutter = positioncap.CUTTER()
    units = cut(cutter, [[m] for m in messages])
    assert kinds(units) == ["START"] + ["DATA"] * 25 + ["END", "START"] + ["DATA"] * 7 + ["END"]
    assert [u.frame_number for u in units[1:26]] == list(range(25))

    parser = PositioncapParser()
    packets = [parser.parse(StreamData(typ="PCAP_RAW", frames=u.frames)) for u in units]
    assert isinstance(packets[0], PositionCapStart) and packets[0].arm_time == ARM1
    first = packets[1]
    assert isinstance(first, PositionCapValues)
    assert list(first.fields) == ["PCAP.BITS0.Value", "INENC1.VAL.Mean", "PCAP.TS_TRIG.Value"]
    for row, pkt in zip(ROWS1, packets[1:26]):
        assert [f.value for f in pkt.fields.values()] == row
        assert isinstance(pkt.fields["PCAP.BITS0.Value"].value, int)
    end1 = packets[26]
    assert isinstance(end1, PositionCapEnd) and end1.samples == 25 and end1.status == "Ok"
    # re-arm: the field list is replaced, not extended (gap §15)
    assert isinstance(packets[27], PositionCapStart) and parser.arm_time == ARM2
    assert [f.name for f in parser.fields] == ["PCAP.TS_TRIG.Value", "COUNTER1.OUT.Max"]
    last = packets[-2]
    assert isinstance(last, PositionCapValues) and last.fields["COUNTER1.OUT.Max"].value == -6
    trig = timedelta(seconds=last.fields["PCAP.TS_TRIG.Value"].value)
    assert parser.arm_time + trig == ARM2 + timedelta(seconds=3.5)
    assert packets[-1].status == "Disarmed"


def test_positioncap_err_reply_is_recorded_not_raised() -> None:
    server = TcpServer(b"ERR Unknown option\n" + positioncap.encode_stream(ARM2, FIELDS2, ROWS2))
    splitter = positioncap.PositionCapSplitter()
    messages: list[bytes] = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(positioncap.OPTIONS_LINE)
        while chunk := conn.recv(65536):
            messages.extend(splitter.feed(chunk))
    server.join()
    errors = splitter.take_errors()
    assert len(errors) == 1 and "refused" in str(errors[0]) and isinstance(errors[0], ProtocolError)
    assert len(messages) == 1 + len(ROWS2) + 1  # the experiment after the refusal still arrives


class _SardanaHandler(http.server.BaseHTTPRequestHandler):
    """A minimal HTTP front for ``sardana.message_from_request`` (the lead's server does the same)."""

    queue: list[list[bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            msg = sardana.message_from_request(self.path, body)
        except ProtocolError as exc:
            self.send_response(422)
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        if msg is not None:
            self.queue.append(msg)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def sardana_server() -> Iterator[tuple[str, list[list[bytes]]]]:
    queue: list[list[bytes]] = []
    handler = type("H", (_SardanaHandler,), {"queue": queue})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", queue
    server.shutdown()
    server.server_close()


def test_sardana_over_http(sardana_server: tuple[str, list[list[bytes]]]) -> None:
    url, queue = sardana_server
    assert sardana.SOCKET == "HTTP"
    with httpx.Client(base_url=url, timeout=10) as client:
        desc = {"serialno": 7, "scandir": "/data/x", "title": "ascan dummy_mot_01 0 1 3 0.1", "column_desc": [{"name": "point_nb"}]}
        assert client.post("/v1/data_desc", json=desc).status_code == 200
        for i in range(4):
            body = {"timestamp": 0.1 * i, "point_nb": i, "dummy_mot_01": i / 3}
            assert client.post("/v1/record_data", json=body).status_code == 200
        assert client.post("/v1/custom_data", json={"anything": 1}).status_code == 200
        assert client.post("/v1/record_data", json={"point_nb": 9}).status_code == 422  # no timestamp
        assert client.post("/v1/data_desc", json={"serialno": "x"}).status_code == 422
        assert client.post("/v1/data_desc", content=b"{not json").status_code == 422
        assert client.post("/v1/record_end", json={}).status_code == 200
    units = cut(sardana.CUTTER(), queue)
    assert kinds(units) == ["START", "DATA", "DATA", "DATA", "DATA", "END"]
    packets = [sardana_parse(StreamData(typ="sardana", frames=u.frames)) for u in units]
    assert isinstance(packets[0], SardanaDataDescription) and packets[0].serialno == 7
    assert packets[0].column_desc == [{"name": "point_nb"}]
    assert all(isinstance(p, SardanaRecordData) for p in packets[1:5])
    assert [p.point_nb for p in packets[1:5]] == [0, 1, 2, 3]
    assert packets[3].dummy_mot_01 == pytest.approx(2 / 3)
    assert isinstance(packets[-1], SardanaRecordEnd)
    assert units[1].frames[0].startswith(b'{"type":"RecordData","timestamp":0.0,')
