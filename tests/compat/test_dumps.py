"""Dump files as before, made safe (issue 12 item 5, issue 11 item 6): DUMP_PATH is the exact
file, appended across scans and winning over dump_prefix; every dump path stays under the dump
root; files are never truncated; one dump has a byte cap; the controller's parameter file
(.cbor for binary values) is what ``dranspose replay -p`` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zmq

from dranspose.dumps.dumpfile import read_dump
from dranspose.dumps.paths import DumpPathError, check_prefix, confine, dump_root
from dranspose.dumps.record import Recorder
from dranspose.dumps.scanfiles import write_scan_files
from dranspose.replay.params import read_parameter_file
from tests.cluster import Cluster, passthrough

WORKER = "tests.payloads.recording:RecordingWorker"
REDUCER = "tests.payloads.recording:RecordingReducer"
ROOT = Path(__file__).resolve().parents[2]


def vw(c: int) -> list[dict[str, Any]]:
    return [{"tags": ["generic"], "constraint": c}]


def test_paths_are_confined_under_the_root(tmp_path: Path) -> None:
    root = dump_root(str(tmp_path))
    (tmp_path / "sub").mkdir()
    assert confine(str(tmp_path / "sub" / "x.cbors"), root) == str(tmp_path / "sub" / "x.cbors")
    for bad in (str(tmp_path / ".." / "x.cbors"), "/etc/passwd", str(tmp_path / "sub" / ".." / ".." / "y")):
        with pytest.raises(DumpPathError, match=str(tmp_path)):
            confine(bad, root)
    os.symlink("/tmp", tmp_path / "link")
    with pytest.raises(DumpPathError, match="outside the dump root"):
        check_prefix(str(tmp_path / "link" / "dump_"), root)
    check_prefix("", root)  # recording off
    assert dump_root(None) == os.path.realpath(os.getcwd())


def _record(path: Path, events: range, **kw: Any) -> Recorder:
    rec = Recorder(path, **kw)
    for e in events:
        rec.record(e, {"s": ("T", [b"%d" % e, b"x" * 100])})
    rec.close()
    return rec


@pytest.mark.allow_error_log  # recording failures are logged at ERROR
def test_recorder_appends_and_caps(tmp_path: Path) -> None:
    path = tmp_path / "d.cbors"
    _record(path, range(0, 3))
    _record(path, range(3, 5))  # a restarted ingester: appended, not truncated
    assert [m.event_number for m in read_dump(path)] == [0, 1, 2, 3, 4]
    size = path.stat().st_size
    rec = _record(path, range(5, 100), max_file_bytes=size + 300)
    assert rec.error is not None and "size cap" in rec.error and rec.dropped > 0
    assert path.stat().st_size <= size + 300
    assert [m.event_number for m in read_dump(path)][:6] == [0, 1, 2, 3, 4, 5]


def test_scan_files_never_overwrite_and_binary_parameters_go_to_cbor(tmp_path: Path) -> None:
    seq = {"parts": {"main": {"a": [None]}}, "sequence": ["main"]}
    paths = write_scan_files(str(tmp_path / "p_"), "u1", seq, {"text": b"hello", "blob": b"\x00\x01\xff"})
    assert paths[1].endswith("parameters-u1.cbor")
    assert cbor2.loads(Path(paths[1]).read_bytes()) == [{"name": "text", "data": b"hello"}, {"name": "blob", "data": b"\x00\x01\xff"}]
    assert read_parameter_file(paths[1]) == {"text": b"hello", "blob": b"\x00\x01\xff"}
    with pytest.raises(FileExistsError):
        write_scan_files(str(tmp_path / "p_"), "u1", seq, {})
    json_paths = write_scan_files(str(tmp_path / "q_"), "u2", seq, {"text": b"hello"})
    assert json_paths[1].endswith("parameters-u2.json") and read_parameter_file(json_paths[1]) == {"text": b"hello"}


@pytest.mark.allow_error_log  # recording failures are logged at ERROR
def test_dump_path_is_the_exact_file_appended_across_scans(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRANSPOSE_DUMP_ROOT", str(tmp_path))
    exact = tmp_path / "beamline.cbors"
    monkeypatch.setenv("DUMP_PATH", str(exact))
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, WORKER, REDUCER, {"a": (f"tcp://127.0.0.1:{port}", passthrough("Ta"))}, nworkers=1).start()
    try:
        # dump_prefix is set too: DUMP_PATH wins, so no per-scan ingester file appears
        assert c.post("/api/v1/parameter/dump_prefix", content=str(tmp_path / "pre_").encode()).status_code == 200
        uuids = []
        for scan in range(2):
            uuids.append(c.set_mapping({"a": [vw(0) for _ in range(3)]}, all_wrap="false"))
            for i in range(3):
                up.send(b"s%d-%d" % (scan, i))
            c.wait_finished()
        c.wait_until(lambda: exact.exists() and len(list(read_dump(exact))) == 6, "both scans in the one file", 10)
        frames = [bytes(m.streams["a"].frames[0]) for m in read_dump(exact)]
        assert frames == [b"s0-0", b"s0-1", b"s0-2", b"s1-0", b"s1-1", b"s1-2"]
        assert not list(tmp_path.glob("pre_a-ingester-*"))
        # the controller still writes the mapping and parameter files of each scan
        assert all((tmp_path / f"pre_mapping-{u}.json").exists() for u in uuids)
        written = json.loads((tmp_path / f"pre_mapping-{uuids[0]}.json").read_bytes())
        assert written == {"parts": {"main": {"a": [vw(0) for _ in range(3)]}}, "sequence": ["main"]}
        # a DUMP_PATH outside the root is refused by the ingester (counted, the scan goes on)
    finally:
        c.stop()
        up.close(0)


@pytest.mark.allow_error_log  # recording failures are logged at ERROR
def test_dump_path_outside_the_root_is_refused_and_the_scan_goes_on(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRANSPOSE_DUMP_ROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    monkeypatch.setenv("DUMP_PATH", str(tmp_path / "elsewhere.cbors"))
    up = zmq.Context.instance().socket(zmq.PUSH)
    port = up.bind_to_random_port("tcp://127.0.0.1")
    c = Cluster(redis_url, WORKER, REDUCER, {"a": (f"tcp://127.0.0.1:{port}", passthrough("Ta"))}, nworkers=1).start()
    try:
        c.set_mapping({"a": [vw(0) for _ in range(2)]}, all_wrap="false")
        for i in range(2):
            up.send(b"m%d" % i)
        assert c.wait_finished()["completed_events"] == 2
        assert not (tmp_path / "elsewhere.cbors").exists()
        errors = c.get("/api/v1/status")["errors"]
        assert errors.get("ingester:a-ingester", {}).get("recording") == 1
    finally:
        c.stop()
        up.close(0)


@pytest.mark.e2e  # the replay CLI as a process
def test_replay_cli_reads_the_controllers_binary_parameter_file(tmp_path: Path) -> None:
    from dranspose.dumps.dumpfile import write_dump
    from dranspose.event import InternalWorkerMessage, StreamData

    write_dump(tmp_path / "d.cbors", [InternalWorkerMessage(event_number=i, streams={"a": StreamData(typ="T", frames=[b"f"])}) for i in range(3)])
    seq = {"parts": {"main": {"a": [None]}}, "sequence": ["main"]}
    _m, params = write_scan_files(str(tmp_path / "dump_"), "u", seq, {"scale": b"3", "fail_on": b"", "blob": b"\x00\x02"})
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "dranspose.cli", "replay", "-w", WORKER, "-r", REDUCER, "-f", str(tmp_path / "d.cbors"), "-p", params, "--no-progress"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 events" in proc.stderr and "0 errors" in proc.stderr
