"""The Recorder: frames recorded off the hot path, identical on reading back; a full queue or
a failing disk stops recording without blocking or raising into the caller."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import zmq

from dranspose.dumps.dumpfile import read_dump
from dranspose.dumps.record import Recorder, dump_path


def test_dump_path() -> None:
    assert dump_path("/data/dump_", "eiger-ingester", "0b1c") == "/data/dump_eiger-ingester-0b1c.cbors"


def test_records_frames_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rec.cbors"
    rec = Recorder(path)
    payloads = []
    for evn in range(50):
        blob = os.urandom(1000 + evn)
        payloads.append(blob)
        rec.record(evn, {"det": ("STINS", [zmq.Frame(b'{"e":%d}' % evn), zmq.Frame(blob)]), "pcap": ("PCAP", [blob[:7]])})
    rec.close()
    assert rec.recorded == 50 and rec.dropped == 0 and rec.error is None
    msgs = list(read_dump(path))
    assert [m.event_number for m in msgs] == list(range(50))
    for m, blob in zip(msgs, payloads):
        assert m.streams["det"].typ == "STINS" and m.streams["det"].frames[1] == blob
        assert m.streams["pcap"].frames == [blob[:7]]
    rec.close()  # idempotent


@pytest.mark.allow_error_log  # a full recording queue stops the recording with an error
def test_full_queue_stops_recording_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "slow.cbors"
    os.mkfifo(fifo)  # the writer thread blocks in open() until we read: a disk that cannot keep up
    rec = Recorder(fifo, max_queue=2)
    for evn in range(6):
        rec.record(evn, {"s": ("STINS", [b"x" * 100])})  # must return although nothing is written
    assert rec.error is not None and "queue full" in rec.error
    assert rec.dropped == 4
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(fifo.read_bytes()))
    reader.start()
    rec.close()
    reader.join(10)
    out = tmp_path / "copy.cbors"
    out.write_bytes(chunks[0])
    assert [m.event_number for m in read_dump(out)] == [0, 1]  # what was queued is written
    assert rec.recorded == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.allow_error_log  # the write error is logged
def test_disk_full_is_reported_and_recording_stops() -> None:
    rec = Recorder("/dev/full")
    for evn in range(40):
        rec.record(evn, {"s": ("STINS", [b"x" * 200_000])})
    rec.close()
    assert rec.error is not None and "No space left" in rec.error
    assert rec.dropped > 0 and rec.recorded + rec.dropped == 40
    rec.record(41, {"s": ("STINS", [b"y"])})  # after close: counted, no exception
    assert rec.dropped > 0


@pytest.mark.allow_error_log  # the open error is logged
def test_unwritable_path_is_reported(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "missing-dir" / "x.cbors")
    rec.record(0, {"s": ("STINS", [b"x"])})
    rec.close()
    assert rec.error is not None and "cannot open" in rec.error and rec.recorded == 0 and rec.dropped == 1


@pytest.mark.allow_error_log  # the unrecordable event is logged
def test_bad_frames_never_raise(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "x.cbors")
    rec.record(0, {"s": ("STINS", [12345])})  # type: ignore[list-item]
    rec.close()
    assert rec.error is not None and rec.dropped == 1
