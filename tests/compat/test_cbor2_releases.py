"""Dump reading on every cbor2 release the project allows (issue 12 item 9: cbor2 5.8 added
read-ahead, which the old project avoided by pinning cbor2<5.8). Each release is installed in
its own directory by ``scripts/ensure-cbor2-versions`` (``make test-env``); a missing one fails
the test with that instruction. Every release must read complete dumps fully and stop a
truncated one after its last complete item, naming the byte offset where the cut item starts."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dranspose.dumps.dumpfile import write_dump
from dranspose.event import InternalWorkerMessage, StreamData

pytestmark = pytest.mark.e2e  # each cbor2 release runs in its own interpreter

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = [v.strip() for v in (ROOT / "scripts" / "cbor2-versions.txt").read_text().splitlines() if v.strip() and not v.startswith("#")]


def _base() -> Path:
    explicit = os.environ.get("DRANSPOSE_CBOR2_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dranspose-test" / "cbor2"


def test_the_pin_matches_the_tested_releases() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"cbor2>=5.6.1,<7"' in pyproject
    assert VERSIONS[0] == "5.6.1" and VERSIONS[-1].startswith("6.")


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[int], int | None]]:
    """name -> (event numbers a correct reader yields, offset of the truncated item or None)."""
    d = tmp_path_factory.mktemp("cbor2dumps")
    sizes = [10, 70_000, 3, 9000, 5000]  # frames bigger than any read-ahead window, and tiny ones
    msgs = [
        InternalWorkerMessage(event_number=i, streams={"s": StreamData(typ="STINS", frames=[b"h%d" % i, bytes([i]) * n])})
        for i, n in enumerate(sizes)
    ]
    write_dump(d / "full.cbors", msgs)
    full = (d / "full.cbors").read_bytes()
    write_dump(d / "four.cbors", msgs[:4])
    last_start = len((d / "four.cbors").read_bytes())
    cases: dict[str, tuple[list[int], int | None]] = {str(d / "full.cbors"): ([0, 1, 2, 3, 4], None)}
    for name, cut in (("cut_in_frame", len(full) - 100), ("cut_in_header", last_start + 3), ("cut_after_tag", last_start + 1)):
        (d / f"{name}.cbors").write_bytes(full[:cut])
        cases[str(d / f"{name}.cbors")] = ([0, 1, 2, 3], last_start)
        with gzip.open(d / f"{name}.cbors.gz", "wb") as f:
            f.write(full[:cut])
        cases[str(d / f"{name}.cbors.gz")] = ([0, 1, 2, 3], last_start)
    return cases


@pytest.mark.parametrize("version", VERSIONS)
def test_truncated_last_item_on_every_allowed_release(version: str, dumps: dict[str, tuple[list[int], int | None]]) -> None:
    target = _base() / version
    if not (target / ".complete").exists():
        pytest.fail(f"cbor2 {version} is not installed in {target}: run scripts/ensure-cbor2-versions (make test-env)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(ROOT / "src"), str(ROOT)])
    proc = subprocess.run(
        [sys.executable, "-m", "tests.compat.cbor2_probe", *dumps], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["cbor2"].startswith(str(target)), f"imported {report['cbor2']}, not cbor2 {version}"
    for path, (events, offset) in dumps.items():
        got = report["files"][path]
        assert got["events"] == events, (version, path, got)
        assert got["sizes"][1] == 70_002  # the big frame arrived whole
        if offset is None:
            assert got["error"] is None, (version, path, got)
        else:
            assert got["error"] is not None and got["error"]["offset"] == offset, (version, path, got)
            assert "truncated" in got["error"]["reason"], (version, path, got)
