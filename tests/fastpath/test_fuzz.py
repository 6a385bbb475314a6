"""Fuzzing: random and mutated real messages into every decoder, on both backends.

No crash, no hang, and only the documented exceptions: CorruptFrameError / ProtocolError
(both ValueErrors). Bounded by hypothesis ``max_examples`` (no deadline flakiness in CI).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.codecs import bslz4 as cb
from dranspose.codecs import bslz4_compress, lz4_compress
from dranspose.codecs import lz4 as cl
from dranspose.errors import ProtocolError
from dranspose.protocols import eiger_legacy, stins, stream2

BACKENDS = backend.available()
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

_X = (np.arange(3000, dtype=np.uint32) * 2654435761 % 1000).astype(np.uint32)
BSLZ4 = bslz4_compress(_X)
LZ4 = lz4_compress(_X, 2048)
S2 = {c: stream2.encode_image(3, 1, {"threshold_1": _X[:2000].reshape(40, 50).astype(np.uint16), "difference": _X[:100].reshape(10, 10)}, c)[0]
      for c in ("bslz4", "lz4", "none")}
S2_START = stream2.encode_start(3, flatfield={"threshold_1": np.ones((10, 10), np.float32)})[0]
EIGER = eiger_legacy.encode_image(1, 0, _X.reshape(60, 50))
STINS = stins.encode_image(1, 0, _X.reshape(60, 50), "bslz4")


def _mutate(blob: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(blob)
    for pos, val in edits:
        buf[pos % len(buf)] = val
    return bytes(buf[:cut] if cut is not None else buf)


edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4)
cuts = st.none() | st.integers(0, 10**5)


def _each_backend(fn):
    for be in BACKENDS.values():
        try:
            fn(be)
        except ProtocolError:  # CorruptFrameError is a subclass
            pass


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([1, 2, 4, 8]), st.integers(0, 400))
def test_random_bytes_into_codecs(blob, elem, n):
    dt = np.dtype(f"u{elem}")
    _each_backend(lambda be: cb.decompress(be, blob, dt, (n,), nthreads=2))
    _each_backend(lambda be: cb.decompress(be, blob, dt))
    _each_backend(lambda be: cl.decompress(be, blob, nthreads=2))
    _each_backend(lambda be: be.lz4_block_decompress_into(blob, np.empty(n, np.uint8)))
    _each_backend(lambda be: be.cbor_decode(blob))


@FUZZ
@given(edits, cuts)
def test_mutated_bslz4_and_lz4(e, cut):
    _each_backend(lambda be: cb.decompress(be, _mutate(BSLZ4, e, cut), np.uint32, (3000,), nthreads=2))
    _each_backend(lambda be: cl.decompress(be, _mutate(LZ4, e, cut), np.uint32, (3000,), nthreads=2))


@FUZZ
@given(st.sampled_from(sorted(S2) + ["start"]), edits, cuts)
def test_mutated_stream2_messages(which, e, cut):
    blob = _mutate(S2_START if which == "start" else S2[which], e, cut)

    def run(be):
        fields = be.cbor_decode(blob)
        if isinstance(fields, dict) and fields.get("type") in ("start", "image", "end"):
            stream2.Stream2Cutter().feed([blob])
            stream2.decode(blob, nthreads=2)

    _each_backend(run)


@FUZZ
@given(st.integers(0, 3), edits, cuts)
def test_mutated_eiger_and_stins_messages(part, e, cut):
    frames = list(EIGER)
    frames[part] = _mutate(frames[part], e, cut)
    try:
        eiger_legacy.EigerLegacyCutter().feed(frames)
        eiger_legacy.decode(frames, nthreads=2)
    except ProtocolError:
        pass
    sframes = list(STINS)
    sframes[part % 2] = _mutate(sframes[part % 2], e, cut)
    try:
        stins.StinsCutter().feed(sframes)
        stins.decode(sframes, nthreads=2)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=60), min_size=0, max_size=6))
def test_random_multipart_into_cutters(parts):
    for cutter in (stins.StinsCutter(), eiger_legacy.EigerLegacyCutter(), stream2.Stream2Cutter()):
        try:
            cutter.feed(parts)
        except ProtocolError:
            pass


REAL = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@REAL
@given(data=st.data())
def test_mutated_real_captures(data, stream2_capture, eiger1m, eiger_small):
    """Mutations of real messages (compiled backend: the reference is too slow for 4 MB frames)."""
    compiled = BACKENDS["compiled"]
    which = data.draw(st.sampled_from(["stream2", "eiger1m", "eiger_small_header"]))
    e = data.draw(edits)
    cut = data.draw(cuts)
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
