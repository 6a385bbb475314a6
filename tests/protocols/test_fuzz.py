"""Fuzzing every wire protocol of the registry through the kit (``kit.run_target``: splitter,
cutter, unit decoder and compat parser with per-stream state): no crash, no hang, only
ProtocolError. Bounded: hypothesis mutations of the kit's seeds, mutations of the real
captures, and a short coverage-guided run of ``bench/fuzz_wire.py`` (whose documented count is
10**6 inputs per protocol)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.codecs import bslz4 as cb
from dranspose.errors import ProtocolError
from dranspose.protocols import REGISTRY, eiger_legacy, protocol_module, stream2
from tests.protocols.conftest import BACKENDS
from tests.protocols.kit import FRAME_SEP, MSG_SEP, SPECS, encode_input, run_target, seeds, split_input

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
MAX_SECONDS = 2.0
TYPS = sorted(REGISTRY)
BYTES = b'\x00\xff{}[]":,0123456789-.eE\n \x80\x93\x85R.qhrJ'


def _bounded(fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    assert time.perf_counter() - t0 < MAX_SECONDS
    return result


@st.composite
def mutated(draw: st.DrawFn, pool: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "split", "join", "dup"]))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from(BYTES))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "split":  # a frame or message boundary where there was none
            data[pos:pos] = draw(st.sampled_from([MSG_SEP, FRAME_SEP]))
        elif op == "join":
            data = bytearray(bytes(data).replace(draw(st.sampled_from([MSG_SEP, FRAME_SEP])), b"", 1))
        elif op == "dup":
            data += data[pos : pos + draw(st.integers(1, 4096))]
    return bytes(data)


@pytest.mark.parametrize("be_name", sorted(BACKENDS))
@pytest.mark.parametrize("typ", TYPS)
def test_fuzz_protocol(typ: str, be_name: str) -> None:
    pool = seeds(typ)
    for data in pool:  # the unmutated seeds decode
        assert run_target(typ, data) >= SPECS[typ].n_data
    saved = backend.active
    backend.active = BACKENDS[be_name]
    try:

        @FUZZ
        @given(data=mutated(pool))
        def run(data: bytes) -> None:
            _bounded(lambda: run_target(typ, data))

        run()
    finally:
        backend.active = saved


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
JSON_TYPS = [t for t in TYPS if t not in ("contrast", "STREAM2", "PCAP_RAW")]  # part 0 is JSON


@pytest.mark.parametrize("typ", JSON_TYPS)
def test_fuzz_json_fields(typ: str) -> None:
    """Replace one key of a real JSON part 0 by an arbitrary JSON value (types the decoders and
    models must reject with a ProtocolError)."""
    series = SPECS[typ].series()
    with_json = [i for i, m in enumerate(series) if m[0][:1] == b"{"]

    @FUZZ
    @given(index=st.sampled_from(with_json), value=JSON_VALUES, pick=st.integers(0, 100))
    def run(index: int, value: Any, pick: int) -> None:
        msg = list(series[index])
        obj = json.loads(msg[0])
        key = sorted(obj)[pick % len(obj)]
        obj[key] = value
        msg[0] = json.dumps(obj).encode()
        _bounded(lambda: run_target(typ, encode_input([series[0], msg, series[-1]])))

    run()


REAL = settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)
CUTS = st.none() | st.integers(0, 10**5)


def _mutate(blob: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(blob)
    for pos, val in edits:
        buf[pos % len(buf)] = val
    return bytes(buf[:cut] if cut is not None else buf)


@REAL
@given(data=st.data())
def test_mutated_real_captures(data: st.DataObject, stream2_capture: Any, eiger1m: Any, eiger_small: Any) -> None:
    """Mutations of real detector messages (compiled backend: the reference is too slow for 4 MB
    frames)."""
    compiled = BACKENDS["compiled"]
    which = data.draw(st.sampled_from(["stream2", "eiger1m", "eiger_small_header"]))
    e = data.draw(EDITS)
    cut = data.draw(CUTS)
    try:
        if which == "stream2":
            msg = _mutate(stream2_capture[1 + data.draw(st.integers(0, 9))][0], e, cut)
            fields = compiled.cbor_decode(msg)
            if isinstance(fields, dict):
                stream2.Stream2Cutter().feed([msg])
                stream2.decode(msg, nthreads=2)
        elif which == "eiger1m":
            frames = list(eiger1m[1 + data.draw(st.integers(0, 8))][1])
            part = data.draw(st.integers(0, 3))
            frames[part] = _mutate(frames[part], e, cut)
            eiger_legacy.EigerLegacyCutter().feed(frames)
            cb.decompress(compiled, frames[2], np.uint32, (1065, 1030), nthreads=2)
            eiger_legacy.decode(frames)
        else:
            frames = list(eiger_small[0])
            part = data.draw(st.integers(0, len(frames) - 1))
            frames[part] = _mutate(frames[part], e, cut)
            eiger_legacy.EigerLegacyCutter().feed(frames)
            eiger_legacy.decode_header(frames, arrays=False)
    except ProtocolError:
        pass


def test_kit_input_format_round_trips() -> None:
    for typ in TYPS:
        if SPECS[typ].raw is None:
            series = SPECS[typ].series()
            assert split_input(encode_input(series)) == [list(m) for m in series]
        assert protocol_module(typ).TYP == typ


@pytest.mark.e2e  # the bench script and its libFuzzer processes
def test_coverage_guided_bench_runs_short(tmp_path: Path) -> None:
    """``bench/fuzz_wire.py`` as documented, with a short count: every protocol and dranspose's
    own formats between components fuzzed with atheris, no finding."""
    out = tmp_path / "fuzz.json"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz_wire.py"), "--runs", "300", "--jobs", "2", "--workdir", str(tmp_path), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    from tests.protocols.transport_kit import TARGETS

    assert sorted(r["typ"] for r in results) == sorted([*TYPS, *TARGETS])
    assert all(r["ok"] and r["inputs"] >= 300 and r["cov_edges"] > 0 for r in results), results
