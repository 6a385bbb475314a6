"""The conformance kit for the codecs: every test runs on the compiled and the reference
backend (fixture ``be``); round-trips over dtypes, shapes, block sizes and buffer types."""

from __future__ import annotations

import lz4.block
import numpy as np
import pytest
import zmq

import dranspose.codecs as codecs
from dranspose.codecs import bslz4 as cb
from dranspose.codecs import lz4 as cl
from dranspose.errors import CorruptFrameError

DTYPES = ["u1", "u2", "u4", "u8", "i1", "<i2", "<i4", "<i8", "<f2", "<f4", "<f8"]
SIZES = [0, 1, 7, 8, 9, 63, 64, 127, 128, 129, 1000, 4096, 4096 + 8, 4096 + 13, 20000]


def _data(rng: np.random.Generator, dtype: str, n: int) -> np.ndarray:
    dt = np.dtype(dtype)
    raw = rng.poisson(2.0, n * dt.itemsize).astype(np.uint8)
    raw[rng.random(raw.size) < 0.05] = 255
    return raw.view(dt)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bslz4_round_trip_every_dtype_and_size(be, dtype):
    rng = np.random.default_rng(hash(dtype) & 0xFFFF)
    for n in SIZES:
        x = _data(rng, dtype, n)
        blob = cb.compress(be, x)
        got = cb.decompress(be, blob, x.dtype)
        assert got.dtype == x.dtype and got.shape == (n,)
        assert got.tobytes() == x.tobytes()
        for nthreads in (1, 2):
            assert cb.decompress(be, blob, x.dtype, (n,), nthreads=nthreads).tobytes() == x.tobytes()


@pytest.mark.parametrize("block_size", [0, 64, 512, 8192, 65536])
def test_bslz4_block_sizes_and_shapes(be, block_size):
    rng = np.random.default_rng(block_size)
    for shape in [(31, 17), (3, 5, 7), (1, 2049), (257, 33)]:
        x = rng.integers(0, 50, shape, dtype=np.uint32)
        if block_size and block_size % 32:
            continue
        blob = cb.compress(be, x, block_size)
        assert int.from_bytes(blob[8:12], "big") == (block_size or 8192)
        np.testing.assert_array_equal(cb.decompress(be, blob, x.dtype, x.shape), x)


def test_bslz4_golden_vector_protocols_1_3(be):
    blob = bytes.fromhex(
        "0000000000000028" "00002000" "00000012" "9eaaaaccccf0f000ff000100500000000000"
        "1000110012001300"
    )
    np.testing.assert_array_equal(cb.decompress(be, blob, np.uint16), np.arange(20, dtype=np.uint16))
    assert cb.compress(be, np.arange(20, dtype=np.uint16))[:12] == blob[:12]


def test_bslz4_buffer_types_and_out(be):
    x = np.arange(5000, dtype=np.uint16).reshape(50, 100) % 77
    blob = cb.compress(be, x)
    arr = np.frombuffer(blob, np.uint8)
    for src in (blob, bytearray(blob), memoryview(blob), arr, zmq.Frame(blob)):
        np.testing.assert_array_equal(cb.decompress(be, src, np.uint16, (50, 100)), x)
    out = np.empty((50, 100), np.uint16)
    assert cb.decompress(be, blob, np.uint16, (50, 100), out=out, nthreads=2) is out
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError):
        cb.decompress(be, blob, np.uint16, out=np.empty(10, np.uint16))


def test_bslz4_headerless_detection(be):
    x = np.arange(3000, dtype=np.int32) % 9
    blob = cb.compress(be, x)
    np.testing.assert_array_equal(cb.decompress(be, blob[12:], np.int32, (3000,)), x)
    with pytest.raises(CorruptFrameError):
        cb.decompress(be, blob[12:], np.int32)  # no header, no shape


def test_bslz4_blocks_are_plain_lz4(be):
    """Each block is a raw LZ4 block that python-lz4 decodes too (format cross-check)."""
    x = np.arange(4096 * 2, dtype=np.uint16)
    blob = cb.compress(be, x)
    c0 = int.from_bytes(blob[12:16], "big")
    block = lz4.block.decompress(blob[16 : 16 + c0], uncompressed_size=8192)
    shuffled = np.empty(8192, np.uint8)
    be.bitshuffle_into(x[:4096].view(np.uint8), shuffled, 2, 4096)
    assert block == shuffled.tobytes()


def test_bitshuffle_backends_agree_and_invert(be):
    rng = np.random.default_rng(5)
    for s in (1, 2, 4, 8, 3, 16):
        for n in (8, 16, 120, 128, 256, 1000, 2048 + 8):
            src = rng.integers(0, 256, n * s, dtype=np.uint8)
            for block in (8, 64, 128, 2048):
                a = np.empty_like(src)
                b = np.empty_like(src)
                be.bitshuffle_into(src, a, s, block)
                be.bitunshuffle_into(a, b, s, block)
                np.testing.assert_array_equal(b, src)


def test_lz4_round_trip_and_stored_blocks(be):
    rng = np.random.default_rng(2)
    for n in (0, 1, 100, 8192, 8193, 50000):
        x = rng.integers(0, 4, n, dtype=np.uint8)
        x[: n // 3] = rng.integers(0, 256, n // 3)  # incompressible head -> stored blocks
        blob = codecs.lz4_compress(x, 1024)
        got = cl.decompress(be, blob)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, x)
        np.testing.assert_array_equal(cl.decompress(be, blob, nthreads=2), x)
    y = np.arange(999, dtype=np.float64).reshape(27, 37)
    out = np.empty_like(y)
    assert cl.decompress(be, codecs.lz4_compress(y), np.float64, y.shape, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_raw_lz4_block_against_python_lz4(be):
    rng = np.random.default_rng(3)
    for n in (1, 15, 16, 300, 70000):
        for pattern in (rng.integers(0, 3, n, dtype=np.uint8), np.tile(np.arange(7, dtype=np.uint8), n)):
            data = pattern.tobytes()
            comp = lz4.block.compress(data, store_size=False, mode="high_compression")
            out = np.empty(len(data), np.uint8)
            be.lz4_block_decompress_into(comp, out)
            assert out.tobytes() == data


def test_truncations_and_corruptions_raise_with_offset(be):
    x = (np.arange(3000, dtype=np.uint32) * 7919) % 1000
    blob = cb.compress(be, x)
    for cut in range(0, len(blob), 37):
        with pytest.raises(CorruptFrameError) as info:
            cb.decompress(be, blob[:cut], np.uint32, (3000,))
        assert info.value.offset is not None
    bad = bytearray(blob)
    bad[16] ^= 0xFF  # first token of the first block
    bad[14] ^= 0x7F  # block length
    with pytest.raises(CorruptFrameError):
        cb.decompress(be, bytes(bad), np.uint32, (3000,))
    lblob = codecs.lz4_compress(x)
    for cut in range(0, len(lblob), 41):
        with pytest.raises(CorruptFrameError):
            cl.decompress(be, lblob[:cut], np.uint32)
    with pytest.raises(CorruptFrameError):
        be.lz4_block_decompress_into(b"\x1f\x00", np.empty(10, np.uint8))
    with pytest.raises(CorruptFrameError):  # match offset before the start
        be.lz4_block_decompress_into(b"\x14a\x05\x00", np.empty(9, np.uint8))


def test_compiled_and_reference_agree_on_errors():
    from dranspose import backend

    found = backend.available()
    x = (np.arange(2500, dtype=np.uint16) * 31) % 400
    blob = bytearray(cb.compress(found["python"], x))
    rng = np.random.default_rng(9)
    for _ in range(40):
        mutated = bytearray(blob)
        for pos in rng.integers(12, len(blob), 3):
            mutated[pos] = rng.integers(0, 256)
        results = []
        for be in found.values():
            try:
                results.append(cb.decompress(be, bytes(mutated), np.uint16, (2500,)).tobytes())
            except CorruptFrameError as exc:
                results.append(("error", exc.offset))
        assert results[0] == results[1]


def test_public_names_use_the_active_backend():
    x = np.arange(100, dtype=np.uint32).reshape(10, 10)
    blob = codecs.bslz4_compress(x)
    np.testing.assert_array_equal(codecs.bslz4_decompress(blob, np.uint32, (10, 10)), x)
    out = np.empty((10, 10), np.uint32)
    assert codecs.bslz4_decompress(blob, "uint32", [10, 10], out=out, nthreads=2) is out
    np.testing.assert_array_equal(codecs.lz4_decompress(codecs.lz4_compress(x), np.uint32, (10, 10)), x)
    assert issubclass(codecs.CorruptFrameError, ValueError)


@pytest.mark.parametrize("dtype", ["u1", "<u2", "<u4", "<u8"])
def test_sparse_and_small_value_patterns(be, dtype):
    """Exercise the SIMD special cases: all-zero groups, low-byte-only groups, mixed."""
    rng = np.random.default_rng(11)
    dt = np.dtype(dtype)
    n = 2048 * 3 + 128 * 5 + 8 * 3 + 5
    big = np.iinfo(dt).max
    patterns = {
        "zeros": np.zeros(n, dt),
        "small": rng.integers(0, 4, n).astype(dt),
        "sparse-gaps": np.where(rng.random(n) < 0.01, big, 0).astype(dt),
        "mixed": np.where(rng.random(n) < 0.3, rng.integers(0, 200, n), 0).astype(dt),
    }
    patterns["mixed"][1000:1100] = big
    for name, x in patterns.items():
        blob = cb.compress(be, x)
        for nthreads in (1, 2):
            got = cb.decompress(be, blob, dt, (n,), nthreads=nthreads)
            assert got.tobytes() == x.tobytes(), name
        shuffled = np.empty(x.nbytes, np.uint8)
        back = np.empty(x.nbytes, np.uint8)
        be.bitshuffle_into(x.view(np.uint8), shuffled, dt.itemsize, 2048)
        be.bitunshuffle_into(shuffled, back, dt.itemsize, 2048)
        assert back.tobytes() == x.tobytes(), name


def test_compiled_shuffle_equals_reference_bytes():
    from dranspose import backend

    found = backend.available()
    rng = np.random.default_rng(12)
    for s in (1, 2, 4, 8):
        for n in (8, 128, 256 + 8, 2048, 2048 + 128 + 16):
            for src in (rng.integers(0, 256, n * s, dtype=np.uint8),
                        np.where(rng.random(n * s) < 0.9, 0, rng.integers(0, 4, n * s)).astype(np.uint8)):
                outs = []
                backs = []
                for be in found.values():
                    out = np.empty_like(src)
                    be.bitshuffle_into(src, out, s, 2048)
                    outs.append(out.tobytes())
                    back = np.empty_like(src)
                    be.bitunshuffle_into(src, back, s, 2048)  # src read as shuffled data
                    backs.append(back.tobytes())
                assert outs[0] == outs[1] and backs[0] == backs[1]
