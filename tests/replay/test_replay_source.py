"""The capture streamer into real PULL/SUB sockets (every multipart message byte-identical and
in order), the synthesizers decoded independently, loops/rate, and the CLI."""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Sequence

import cbor2
import numpy as np
import pytest
import zmq

from dranspose.codecs import bslz4_decompress
from dranspose.dumps.dumpfile import read_capture, read_messages
from dranspose.sources.streamer import Streamer, configure_parser, run, stream_messages, synth_eiger_legacy, synth_stins, synth_stream2
from dranspose.transport.sockets import free_tcp_port


def _free_url() -> str:
    """A free loopback port (released synchronously, unlike a ZeroMQ socket's port)."""
    return f"tcp://127.0.0.1:{free_tcp_port()}"


def _receive(pattern: str, endpoint: str, count: int, ready: threading.Event | None = None) -> list[list[bytes]]:
    with zmq.Context.instance().socket(zmq.PULL if pattern == "PUSH" else zmq.SUB) as sock:
        if pattern == "PUB":
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.setsockopt(zmq.RCVTIMEO, 20000)
        sock.connect(endpoint)
        if ready is not None:
            ready.set()
        return [sock.recv_multipart() for _ in range(count)]


def _stream_and_collect(messages: Sequence[Sequence[bytes]], pattern: str, loops: int = 1, rate: float | None = None) -> tuple[int, list[list[bytes]]]:
    got: list[list[bytes]] = []
    with Streamer("tcp://127.0.0.1:0", pattern) as streamer:
        t = threading.Thread(target=lambda: got.extend(_receive(pattern, streamer.endpoint, len(messages) * loops)))
        t.start()
        assert streamer.wait_for_peer(20)
        n = streamer.send(iter(messages), rate=rate, loops=loops)
    t.join(30)
    return n, got


@pytest.mark.parametrize("pattern", ["PUSH", "PUB"])
def test_raw_capture_arrives_byte_identical(captures: Path, pattern: str) -> None:
    msgs = list(read_capture(captures / "eiger-small.cbors"))
    n, got = _stream_and_collect(msgs, pattern)
    assert n == 5 and got == msgs
    assert [len(m) for m in got] == [9, 5, 5, 5, 1]


def test_xspress_capture_in_order_with_loops(captures: Path) -> None:
    msgs = list(read_capture(captures / "xspress3-dump.cbors"))
    n, got = _stream_and_collect(msgs, "PUSH", loops=2)
    assert n == 124 and got == msgs + msgs


def test_dump_played_as_device_messages(captures: Path) -> None:
    msgs = list(read_messages(captures / "dump_xrd.cbors"))
    n, got = _stream_and_collect(msgs, "PUSH", rate=2000)
    assert n == 11 and got == msgs and json.loads(got[0][0])["htype"] == "header"


def test_stream_messages_api(captures: Path) -> None:
    msgs = list(read_capture(captures / "albaem-dump.cbors"))
    url = _free_url()
    got: list[list[bytes]] = []
    t = threading.Thread(target=lambda: got.extend(_receive("PUSH", url, 6)))
    t.start()
    assert stream_messages(url, lambda: read_capture(captures / "albaem-dump.cbors"), "PUSH") == 6
    t.join(30)
    assert got == msgs


def test_no_peer_times_out() -> None:
    with pytest.raises(TimeoutError):
        stream_messages("tcp://127.0.0.1:0", [[b"x"]], peer_timeout=0.2)


def test_synth_stins_decodes() -> None:
    from dranspose.protocols import stins

    msgs = list(synth_stins(5, (32, 48), "uint16", "bslz4"))
    assert len(msgs) == 7
    metas = [json.loads(m[0]) for m in msgs]
    assert [m["htype"] for m in metas] == ["header"] + ["image"] * 5 + ["series_end"]
    assert [m["msg_number"] for m in metas] == list(range(7))
    assert [m["frame"] for m in metas[1:6]] == list(range(5))
    img = bslz4_decompress(msgs[1][1], np.uint16, (32, 48))
    plain = list(synth_stins(1, (32, 48), "uint16", "none"))
    np.testing.assert_array_equal(img, np.frombuffer(plain[1][1], np.uint16).reshape(32, 48))
    assert img.sum() > 0 and stins.TYP == "STINS"


@pytest.mark.parametrize("compression", ["bslz4", "none"])
def test_synth_eiger_legacy(compression: str) -> None:
    msgs = list(synth_eiger_legacy(3, (40, 24), "uint32", compression))
    assert [len(m) for m in msgs] == [2, 4, 4, 4, 1]
    assert json.loads(msgs[0][0])["htype"] == "dheader-1.0"
    for i, m in enumerate(msgs[1:4]):
        p1, p2 = json.loads(m[0]), json.loads(m[1])
        assert p1["frame"] == i and p1["hash"] == hashlib.md5(m[1]).hexdigest()
        assert p2["shape"] == [24, 40] and p2["size"] == len(m[2])
        if compression == "bslz4":
            assert p2["encoding"] == "bs32-lz4<"
            img = bslz4_decompress(m[2], np.uint32, (40, 24))
        else:
            img = np.frombuffer(m[2], "<u4").reshape(40, 24)
        assert img.shape == (40, 24)
    assert json.loads(msgs[-1][0]) == {"htype": "dseries_end-1.0", "series": 1}
    from dranspose.protocols import eiger_legacy

    decoded = [eiger_legacy.decode(m) for m in msgs]  # the protocol's own decoder agrees
    assert decoded[2].data is not None and decoded[2].data.shape == (40, 24)
    assert all(eiger_legacy.verify_hash(m) for m in msgs[1:4])


def _untag(obj: Any, tag: int) -> Any:
    assert isinstance(obj, cbor2.CBORTag) and obj.tag == tag, obj
    return obj.value


def test_synth_stream2_bslz4() -> None:
    msgs = list(synth_stream2(2, (16, 24), "uint16", "bslz4"))
    assert all(len(m) == 1 and m[0][:3] == b"\xd9\xd9\xf7" for m in msgs)
    start, img, end = cbor2.loads(msgs[0][0]), cbor2.loads(msgs[1][0]), cbor2.loads(msgs[-1][0])
    assert start["type"] == "start" and start["image_size_x"] == 24 and end["type"] == "end"
    assert img["image_id"] == 0 and cbor2.loads(msgs[2][0])["image_id"] == 1
    dims, typed = _untag(img["data"]["threshold_1"], 40)
    assert list(dims) == [16, 24]
    algo, elem, blob = _untag(_untag(typed, 69), 56500)
    assert algo == "bslz4" and elem == 2
    img0 = bslz4_decompress(blob, np.uint16, (16, 24))
    from dranspose.protocols import stream2

    decoded = stream2.decode(msgs[1][0])
    np.testing.assert_array_equal(decoded.data["threshold_1"], img0)
    assert [stream2.decode(m[0]).image_id for m in msgs[1:3]] == [0, 1]
    plain = list(synth_stream2(2, (16, 24), "uint16", "none"))
    np.testing.assert_array_equal(stream2.decode(plain[1][0]).data["threshold_1"], img0)


def _run_cli(argv: list[str], count: int) -> list[list[bytes]]:
    """``dranspose source ARGV -u URL`` (in-process) into a PULL socket: the ``count`` messages."""
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    url = _free_url()
    args = parser.parse_args([*argv, "-u", url, "--peer-timeout", "20"])
    got: list[list[bytes]] = []
    t = threading.Thread(target=lambda: got.extend(_receive("PUSH", url, count)))
    t.start()
    assert run(args) == 0
    t.join(30)
    return got


def test_cli_plays_a_capture(captures: Path) -> None:
    got = _run_cli(["play", str(captures / "pcap-zmq.cbors"), "--loops", "2"], 204)
    msgs = list(read_capture(captures / "pcap-zmq.cbors"))
    assert got == msgs + msgs


def test_cli_synth() -> None:
    got = _run_cli(["synth", "stins", "-n", "4", "--shape", "8", "8"], 6)
    assert got == list(synth_stins(4, (8, 8)))
