"""The restricted unpickler of PROTOCOLS §13: real pickles load, anything else is a ProtocolError
and runs no code."""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.middlewares import contrast as contrast_mw
from dranspose.middlewares import lecroy as lecroy_mw
from dranspose.middlewares import xspress as xspress_mw
from dranspose.protocols import contrast, lecroy, xspress3
from dranspose.protocols._pickles import WIRE_OPCODES, load_wire_pickle
from tests.protocols.proto_helpers import read_capture


class _Evil:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


def _evil_pickles(marker: Path) -> dict[str, bytes]:
    cmd = f"touch {marker}".encode()
    return {
        "reduce-os.system-p2": pickle.dumps({"status": "running", "x": _Evil(marker)}, protocol=2),
        "reduce-os.system-p4": pickle.dumps([_Evil(marker)], protocol=4),
        "global-builtins.eval": b"\x80\x02cbuiltins\neval\nX\x0c\x00\x00\x00__import__()\x85R.",
        "stack-global-subprocess": (
            b"\x80\x04\x8c\nsubprocess\x8c\x05Popen\x93X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
        ),
        "inst-opcode": b"(S'" + cmd + b"'\nios\nsystem\n.",
        "obj-opcode": b"\x80\x02(cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"o.",
        "newobj-ndarray": b"\x80\x02cnumpy\nndarray\n)\x81.",
        "numpy-other-global": b"\x80\x02cnumpy\nload\nX\x04\x00\x00\x00/etcq\x00\x85R.",
        "persistent-id": b"\x80\x02X\x01\x00\x00\x00aQ.",
        "ext-registry": b"\x80\x02\x82\x01.",
        "protocol-0-text": b"(lp0\nI1\na.",
    }


def test_evil_pickles_are_refused_without_side_effects(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, data in _evil_pickles(marker).items():
        with pytest.raises(ProtocolError):
            load_wire_pickle(data)
        with pytest.raises(ProtocolError):
            contrast.CUTTER().feed([data])
        with pytest.raises(ProtocolError):
            contrast_mw.parse(StreamData(typ="contrast", frames=[data]))
        assert not marker.exists(), name


def test_evil_meta_and_timestamps_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps([_Evil(marker)], protocol=4)
    image = xspress3.encode_image(0, np.zeros((1, 8), np.uint32), [np.zeros(1)])
    with pytest.raises(ProtocolError):
        xspress_mw.parse(StreamData(typ="xspress", frames=[image[0], image[1], evil]))
    trace = lecroy.encode_traces(1, 0, np.zeros((1, 4)), [1.0])
    seq = lecroy.encode_seqstart(0, -1, 0, [1]) + [trace[0], trace[1], evil] + lecroy.encode_seqend(1)
    with pytest.raises(ProtocolError):
        lecroy_mw.parse(StreamData(typ=lecroy.TYP, frames=seq))
    assert not marker.exists()


def test_capture_pickles_use_only_the_wire_subset() -> None:
    pickles = [m[0] for m in read_capture("contrast-dump.cbors")]
    pickles += [m[0] for m in read_capture("xspress3-dump.cbors") if m[0][:1] == b"\x80"]
    pickles += [m[2] for m in read_capture("maui-02-continuous-3.cbor.gz") if len(m) == 3]
    assert len(pickles) > 40
    for data in pickles:
        assert {op.name for op, _, _ in pickletools.genops(data)} <= WIRE_OPCODES
        assert load_wire_pickle(data) is not None


def test_protocol2_latin1_array_bytes() -> None:
    # protocol 2 stores array bytes as _codecs.encode(<latin-1 text>, 'latin1'): all 256 byte values
    arr = np.frombuffer(bytes(range(256)) * 2, dtype="<f8")
    back = load_wire_pickle(pickle.dumps({"a": arr}, protocol=2))["a"]
    assert back.tobytes() == arr.tobytes()


def test_uninitialised_huge_array_is_refused() -> None:
    # numpy.ndarray((2**24,)) called directly: 128 MiB of uninitialised memory from a 30-byte pickle
    data = b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x01\x85\x85R."
    with pytest.raises(ProtocolError, match="ndarray called directly"):
        load_wire_pickle(data)
    with pytest.raises(ProtocolError, match="deeper"):
        load_wire_pickle(pickle.dumps(_nested(60), protocol=2))


def _nested(n: int) -> list[object]:
    out: list[object] = []
    for _ in range(n):
        out = [out]
    return out


def test_corrupt_pickles_are_protocol_errors() -> None:
    good = pickle.dumps({"status": "running", "a": np.arange(4.0)}, protocol=2)
    for data in (b"", b"\x80", good[:-1], good[: len(good) // 2], b"\x80\x05\x95" + b"\xff" * 8, b"not a pickle"):
        with pytest.raises(ProtocolError):
            load_wire_pickle(data)


def _dtype_pickle(state: bytes, name: bytes = b"f8") -> bytes:
    """A protocol-2 pickle of numpy.dtype(name) followed by BUILD with a raw state tuple."""
    return b"\x80\x02cnumpy\ndtype\nX" + len(name).to_bytes(4, "little") + name + b"\x89\x88\x87R" + state + b"b."


def test_forged_dtypes_are_refused() -> None:
    """Issue 11: BUILD on a dtype never reaches dtype.__setstate__; object and structured
    dtypes cannot be made, whatever the names or state say."""
    plain = load_wire_pickle(pickle.dumps(np.dtype("<u4"), protocol=2))
    assert plain == np.dtype("<u4")
    forged_fields = pickle.dumps(np.dtype([("a", "O")]), protocol=2)
    forged_state = _dtype_pickle(b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t")  # flags 63 = object
    evil = {
        "object": pickle.dumps(np.array([1, None], dtype=object), protocol=2),
        "structured": pickle.dumps(np.zeros(2, dtype=[("a", "<f4"), ("b", "<u2")]), protocol=2),
        "structured-object": forged_fields,
        "O8-name": _dtype_pickle(b")", b"O8"),
        "flags-object": forged_state,
        "datetime-metadata": pickle.dumps(np.zeros(1, dtype="M8[s]"), protocol=2),
        "void": pickle.dumps(np.zeros(1, dtype="V8"), protocol=2),
    }
    for name, data in evil.items():
        with pytest.raises(ProtocolError):
            load_wire_pickle(data)
        with pytest.raises(ProtocolError):
            contrast.decode([data])


def test_wire_arrays_are_rebuilt_from_plain_data() -> None:
    values = {
        "f": np.arange(6.0).reshape(2, 3),
        "big-endian": np.arange(4, dtype=">i4"),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.uint16).reshape(2, 3)),
        "bool": np.array([True, False]),
        "complex": np.array([1 + 2j]),
        "unicode": np.array(["ab", "c"]),
        "bytes": np.array([b"xy"]),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3)),
    }
    for protocol in (2, 3, 4):
        back = load_wire_pickle(pickle.dumps(values, protocol=protocol))
        for key, value in values.items():
            assert type(back[key]) is type(value), key
            assert np.asarray(back[key]).dtype == np.asarray(value).dtype, key
            np.testing.assert_array_equal(back[key], value)
        assert back["f"].flags.writeable


def test_array_bytes_must_match_its_shape() -> None:
    good = pickle.dumps(np.arange(4.0), protocol=2)
    # claim 2**20 elements with 32 bytes of data: refused, nothing allocated for the claim
    bad = good.replace(b"K\x04\x85", b"J\x00\x00\x10\x00\x85")
    assert bad != good
    with pytest.raises(ProtocolError, match="needs"):
        load_wire_pickle(bad)


def test_memo_indices_must_be_sequential() -> None:
    """Found by bench/fuzz_wire.py: ``LONG_BINPUT 88801649`` made CPython's unpickler size its
    memo for 88 million entries (700 MB, 3 s) from a 469-byte contrast message."""
    good = pickle.dumps({"status": "started", "scannr": 1}, protocol=2)
    assert b"q\x00" in good  # BINPUT 0
    huge_put = good.replace(b"q\x00", b"r\x71\x0b\x4b\x05", 1)
    never_stored = good[:-1].replace(b"q\x01", b"q\x01h\x07", 1) + b"."
    for data in (huge_put, never_stored):
        with pytest.raises(ProtocolError, match="memo index"):
            load_wire_pickle(data)
    assert load_wire_pickle(good) == {"status": "started", "scannr": 1}
