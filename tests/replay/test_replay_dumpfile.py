"""Dump and capture files: every accepted form, truncation/corruption with byte offsets,
restricted unpickling of old .pkls dumps."""

from __future__ import annotations

import datetime
import gzip
import io
import json
import os
import pickle
from pathlib import Path

import cbor2
import numpy as np
import pytest
import zmq

from dranspose.codecs import bslz4_decompress
from dranspose.dumps.dumpfile import (
    DumpError,
    encode_dump_item,
    read_capture,
    read_dump,
    read_messages,
    write_capture,
    write_chunks,
    write_dump,
)
from dranspose.errors import ProtocolError
from dranspose.event import InternalWorkerMessage, StreamData


def test_dump_xrd_two_element_form(captures: Path) -> None:
    msgs = list(read_dump(captures / "dump_xrd.cbors"))
    assert [m.event_number for m in msgs] == list(range(11))
    assert all(list(m.streams) == ["xrd"] and m.streams["xrd"].typ == "STINS" for m in msgs)
    header = json.loads(msgs[0].streams["xrd"].frames[0])
    assert header == {"htype": "header", "filename": "output/xrd.h5", "msg_number": 0}
    img = msgs[1].streams["xrd"]
    assert img.length == 2 and isinstance(img.frames[1], bytes) and len(img.frames[1]) == 200
    assert json.loads(msgs[10].streams["xrd"].frames[0])["htype"] == "series_end"


def test_eiger_legacy_gz_dump(captures: Path) -> None:
    msgs = list(read_dump(captures / "eiger-legacy-1m-bslz4.dump.cbors.gz"))
    assert [m.event_number for m in msgs] == list(range(10))
    assert msgs[0].streams["eigerxes"].typ == "EIGER_LEGACY"
    assert msgs[0].streams["eigerxes"].length == 9
    assert all(m.streams["eigerxes"].length == 4 for m in msgs[1:])
    frames = msgs[1].streams["eigerxes"].frames
    d = json.loads(frames[1])
    assert d["encoding"] == "bs32-lz4<" and d["shape"] == [1030, 1065] and d["size"] == len(frames[2])
    img = bslz4_decompress(frames[2], np.uint32, (1065, 1030))
    assert img.shape == (1065, 1030)


def _items(tagged: bool, three: bool) -> bytes:
    out = b""
    for evn in range(3):
        body = [evn, {"s": cbor2.CBORTag(42878, ["T", [b"h%d" % evn, b"\x00" * evn]])}]
        if three:
            body.append(datetime.datetime(2025, 5, 1, 12, 0, evn, tzinfo=datetime.timezone.utc))
        item = cbor2.CBORTag(42877, body)
        out += cbor2.dumps(cbor2.CBORTag(55799, item) if tagged else item)
    return out


@pytest.mark.parametrize("tagged", [True, False])
@pytest.mark.parametrize("three", [True, False])
@pytest.mark.parametrize("gz", [True, False])
def test_all_dump_forms(tmp_path: Path, tagged: bool, three: bool, gz: bool) -> None:
    data = _items(tagged, three)
    path = tmp_path / ("d.cbors.gz" if gz else "d.cbors")
    path.write_bytes(gzip.compress(data) if gz else data)
    msgs = list(read_dump(path))
    assert [m.event_number for m in msgs] == [0, 1, 2]
    assert [m.streams["s"].frames for m in msgs] == [[b"h0", b""], [b"h1", b"\x00"], [b"h2", b"\x00\x00"]]
    if three:
        assert msgs[2].created_at == datetime.datetime(2025, 5, 1, 12, 0, 2, tzinfo=datetime.timezone.utc)


def test_written_dump_is_the_documented_encoding(tmp_path: Path) -> None:
    when = datetime.datetime(2026, 11, 23, 21, 35, 16, 792042, tzinfo=datetime.timezone.utc)
    chunks = encode_dump_item(3, {"orca": ("STINS", [zmq.Frame(b"\x00\x01"), b"{}"])}, when)
    raw = b"".join(bytes(c) for c in chunks)
    assert raw.startswith(bytes.fromhex("d9d9f7 d9a77d 83 03 a1 646f726361 d9a77e 82 655354494e53 82 420001 427b7d c0"))
    decoded = cbor2.loads(raw)  # an independent decoder agrees
    assert decoded.tag == 42877 and decoded.value[0] == 3 and decoded.value[2] == when
    path = tmp_path / "one.cbors"
    with open(path, "wb") as f:
        write_chunks(f, chunks)
    (msg,) = read_dump(path)
    assert msg.streams["orca"].frames == [b"\x00\x01", b"{}"] and msg.created_at == when


def test_roundtrip_gz(tmp_path: Path, captures: Path) -> None:
    msgs = list(read_dump(captures / "dump_xrd.cbors"))
    assert write_dump(tmp_path / "x.cbors.gz", msgs) == 11
    again = list(read_dump(tmp_path / "x.cbors.gz"))
    assert [m.streams["xrd"].frames for m in again] == [m.streams["xrd"].frames for m in msgs]


def _boundaries(data: bytes) -> list[int]:
    """Item start offsets, from cbor2 reading a seekable buffer (independent of our reader)."""
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    starts = [0]
    while fp.tell() < len(data):
        dec.decode()
        starts.append(fp.tell())
    return starts


def test_truncated_dump_yields_everything_before_the_offset(tmp_path: Path, captures: Path) -> None:
    data = (captures / "dump_xrd.cbors").read_bytes()
    starts = _boundaries(data)
    path = tmp_path / "cut.cbors"
    path.write_bytes(data[: starts[7] + 30])
    got = []
    with pytest.raises(DumpError) as info:
        for m in read_dump(path):
            got.append(m.event_number)
    assert got == list(range(7))
    assert info.value.offset == starts[7] and f"byte offset {starts[7]}" in str(info.value)
    assert str(path) in str(info.value) and isinstance(info.value, ProtocolError)


def test_corrupt_byte_reports_offset(tmp_path: Path, captures: Path) -> None:
    data = bytearray((captures / "dump_xrd.cbors").read_bytes())
    first = _boundaries(bytes(data))[1]
    data[first] = 0xFF  # a "break" where an item must start
    path = tmp_path / "bad.cbors"
    path.write_bytes(bytes(data))
    gen = read_dump(path)
    assert next(gen).event_number == 0
    with pytest.raises(DumpError) as info:
        next(gen)
    assert info.value.offset == first


def test_not_a_dump_item(tmp_path: Path) -> None:
    path = tmp_path / "weird.cbors"
    path.write_bytes(cbor2.dumps({"hello": 1}))
    with pytest.raises(DumpError, match="not a dump item.*byte offset 0"):
        list(read_dump(path))


def test_raw_capture_and_messages(captures: Path) -> None:
    msgs = list(read_capture(captures / "pcap-zmq.cbors"))
    assert len(msgs) == 102 and all(len(m) == 1 for m in msgs)
    assert json.loads(msgs[0][0])["message_type"] == "series-start"
    # a dump played as messages: each event's frames of the stream
    xrd = list(read_messages(captures / "dump_xrd.cbors"))
    assert len(xrd) == 11 and len(xrd[1]) == 2
    with pytest.raises(DumpError, match="raw capture"):
        list(read_dump(captures / "pcap-zmq.cbors"))
    with pytest.raises(DumpError, match="not an array of byte strings"):
        list(read_capture(captures / "dump_xrd.cbors"))


def test_capture_roundtrip(tmp_path: Path) -> None:
    msgs = [[b"a", b"bb"], [b""], [bytes(range(256)) * 3]]
    assert write_capture(tmp_path / "c.cbors", msgs) == 3
    assert list(read_capture(tmp_path / "c.cbors")) == msgs
    assert cbor2.loads((tmp_path / "c.cbors").read_bytes()) in ([b"a", b"bb"], (b"a", b"bb"))


def _iwm(evn: int) -> InternalWorkerMessage:
    return InternalWorkerMessage(event_number=evn, streams={"x": StreamData(typ="STINS", frames=[b"f%d" % evn])})


def test_old_pkls_dump(tmp_path: Path) -> None:
    path = tmp_path / "old.pkls"
    with open(path, "wb") as f:
        for evn in range(4):
            pickle.dump(_iwm(evn), f)
    msgs = list(read_dump(path))
    assert [m.streams["x"].frames for m in msgs] == [[b"f0"], [b"f1"], [b"f2"], [b"f3"]]
    gz = tmp_path / "old.pkls.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert len(list(read_dump(gz))) == 4


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch PWNED",))


def test_crafted_pkls_cannot_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkls"
    with open(path, "wb") as f:
        pickle.dump(_iwm(0), f)
        offset = f.tell()
        pickle.dump(_Evil(), f)
    gen = read_dump(path)
    assert next(gen).event_number == 0
    with pytest.raises(DumpError) as info:
        next(gen)
    assert info.value.offset == offset and "system" in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_gz_dump(tmp_path: Path, captures: Path) -> None:
    data = (captures / "dump_xrd.cbors").read_bytes()
    starts = _boundaries(data)
    z = gzip.compress(data)
    path = tmp_path / "cut.cbors.gz"
    path.write_bytes(z[: len(z) // 2])
    got = []
    with pytest.raises(DumpError, match="truncated item.*Compressed file ended") as info:
        for m in read_dump(path):
            got.append(m.event_number)
    assert info.value.offset in starts and got == list(range(starts.index(info.value.offset)))
    assert len(got) >= 1  # the events before the cut were yielded (offsets count uncompressed bytes)
