"""The compiled fast path's internals: both unshuffle kernels (SSE2 and GFNI), non-temporal
output stores, and the pure-C helper pool (concurrent callers, fork, errors).

Results are compared with the original arrays, so every kernel/store/thread combination
must decode bit-exactly."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from _fastpath import bslz4 as fb
from dranspose.codecs import bslz4 as cb
from dranspose.backend import available
from dranspose.errors import CorruptFrameError

COMPILED = available()["compiled"]


def _patterns(itemsize: int, n: int) -> dict[str, np.ndarray]:
    """Arrays that hit every kernel branch: all-zero groups, only-low-byte groups (the
    zero-extend path), fully live groups, and mixtures within one block."""
    rng = np.random.default_rng(itemsize * 1000 + n)
    dt = np.dtype(f"<u{itemsize}")
    top = np.iinfo(dt).max
    sparse = np.where(rng.random(n) < 0.02, rng.integers(1, 200, n), 0).astype(dt)
    gaps = rng.poisson(0.5, n).astype(dt)
    gaps[(np.arange(n) % 300) < 3] = top
    mixed = np.zeros(n, dt)
    mixed[n // 3 : n // 2] = rng.integers(0, top, n // 2 - n // 3, dtype=dt, endpoint=True)
    return {
        "zeros": np.zeros(n, dt),
        "sparse": sparse,
        "gaps": gaps,
        "random": rng.integers(0, top, n, dtype=dt, endpoint=True),
        "mixed": mixed,
    }


@pytest.fixture
def kernel_state():
    """Restore the tuning hooks after each test."""
    old_nt = fb._set_nt_min_bytes(-1)
    fb._set_nt_min_bytes(old_nt)
    yield
    fb._set_gfni(True)
    fb._set_nt_min_bytes(old_nt)


@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
@pytest.mark.parametrize("n", [128, 2048 + 128, 20000, 40960 + 13])
def test_every_kernel_and_store_mode_decodes_exactly(kernel_state, itemsize, n):
    for name, x in _patterns(itemsize, n).items():
        blob = cb.compress(COMPILED, x)
        for gfni in (False, True):
            fb._set_gfni(gfni)
            for nt_min in (-1, 0):  # cached stores / non-temporal stores for any size
                fb._set_nt_min_bytes(nt_min)
                for nthreads in (1, 3):
                    got = cb.decompress(COMPILED, blob, x.dtype, (n,), nthreads=nthreads)
                    assert got.tobytes() == x.tobytes(), (name, gfni, nt_min, nthreads)


def test_unaligned_output_with_nontemporal_threshold(kernel_state):
    """Non-temporal stores need 16-byte alignment: a misaligned ``out`` must still work."""
    fb._set_nt_min_bytes(0)
    x = _patterns(4, 8192)["gaps"]
    blob = cb.compress(COMPILED, x)
    raw = np.zeros(x.nbytes + 16, np.uint8)
    for shift in (1, 4, 8):
        out = raw[shift : shift + x.nbytes]
        COMPILED.bslz4_decompress_into(memoryview(blob), out, 4, 8192, 12, 2)
        assert out.tobytes() == x.tobytes()


def test_concurrent_callers_share_the_pool_safely(kernel_state):
    """Several Python threads decoding at once (the pool serves one, the others decode on
    their own thread) all get exact results."""
    fb._set_nt_min_bytes(0)
    arrays = [_patterns(4, 50000 + 128 * i)["gaps"] for i in range(4)]
    blobs = [cb.compress(COMPILED, a) for a in arrays]
    errors: list[str] = []

    def work(i: int) -> None:
        out = np.empty_like(arrays[i])
        for _ in range(30):
            cb.decompress(COMPILED, blobs[i], np.uint32, arrays[i].shape, out=out, nthreads=2)
            if out.tobytes() != arrays[i].tobytes():
                errors.append(f"thread {i} got a wrong result")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_corrupt_block_in_parallel_decode_raises_and_pool_recovers():
    x = _patterns(4, 40960)["random"]
    blob = bytearray(cb.compress(COMPILED, x))
    # block 3's LZ4 payload: overwrite its first token/literal bytes with a bad match
    pos = 12
    for _ in range(3):
        pos += 4 + int.from_bytes(blob[pos : pos + 4], "big")
    blob[pos + 4 : pos + 8] = b"\x0f\xff\xff\xff"
    with pytest.raises(CorruptFrameError) as info:
        cb.decompress(COMPILED, bytes(blob), np.uint32, x.shape, nthreads=4)
    assert "block" in str(info.value)
    # the pool is still usable and exact afterwards
    good = cb.compress(COMPILED, x)
    assert cb.decompress(COMPILED, good, np.uint32, x.shape, nthreads=4).tobytes() == x.tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child():
    x = _patterns(4, 40960)["gaps"]
    blob = cb.compress(COMPILED, x)
    assert cb.decompress(COMPILED, blob, np.uint32, x.shape, nthreads=2).tobytes() == x.tobytes()
    pid = os.fork()
    if pid == 0:  # child: helpers of the parent do not exist here; the pool must restart
        ok = cb.decompress(COMPILED, blob, np.uint32, x.shape, nthreads=2).tobytes() == x.tobytes()
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_mutated_streams_never_crash_with_every_kernel(kernel_state):
    """Random byte flips and truncations, decoded with both kernels, non-temporal stores and
    helpers: either a CorruptFrameError or some output, never a crash or an out-of-bounds
    access."""
    rng = np.random.default_rng(7)
    x = _patterns(4, 3 * 2048 + 128)["gaps"]
    blob = cb.compress(COMPILED, x)
    fb._set_nt_min_bytes(0)
    out = np.empty_like(x)
    raised = 0
    for trial in range(300):
        fb._set_gfni(bool(trial % 2))
        b = bytearray(blob)
        for _ in range(1 + trial % 4):
            b[int(rng.integers(12, len(b)))] = int(rng.integers(0, 256))
        if trial % 5 == 0:
            b = b[: int(rng.integers(12, len(b)))]
        try:
            COMPILED.bslz4_decompress_into(memoryview(bytes(b)), out.view(np.uint8), 4, 8192, 12, 3)
        except CorruptFrameError as exc:
            raised += 1
            assert exc.offset is None or 0 <= exc.offset <= len(b)
    assert raised > 100  # most mutations are detected (the rest decode to some output)
