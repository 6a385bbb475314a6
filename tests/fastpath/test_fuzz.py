"""Fuzzing the codecs and the CBOR walker with random and mutated blobs, on both backends
(whole protocol messages are fuzzed by the protocol kit: tests/protocols/test_fuzz.py).

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

BACKENDS = backend.available()
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

_X = (np.arange(3000, dtype=np.uint32) * 2654435761 % 1000).astype(np.uint32)
BSLZ4 = bslz4_compress(_X)
LZ4 = lz4_compress(_X, 2048)


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
