"""The old helper API analyses import: h5dump (h5py round trips), IncrementalBuffer,
import_class, parameter adapters and class-level from_bytes/to_bytes, the CBOR message hooks,
the old state models, and the shared tick rule."""

from __future__ import annotations

import threading
from pathlib import Path

import cbor2
import h5py
import numpy as np
import pytest

from dranspose.core.ticks import TickClock
from dranspose.errors import ConfigError
from dranspose.event import InternalWorkerMessage, StreamData, message_encoder, message_tag_hook
from dranspose.helpers.h5dump import dump
from dranspose.helpers.incremental import IncrementalBuffer
from dranspose.helpers.utils import import_class, parameters_hash
from dranspose.parameters import BoolParameter, FloatParameter, IntParameter, Parameter, ParameterList, StrParameter
from dranspose.protocol import ControllerUpdate, EnsembleState, IngesterState, ReducerState, WorkerUpdate, WorkParameter


def test_h5dump_round_trip_uncompressed_by_default(tmp_path: Path) -> None:
    data = {
        "image": np.arange(64 * 64, dtype=np.uint16).reshape(64, 64),
        "image_attrs": {"units": "counts", "scale": 2.5},
        "map": {"x": [1.0, 2.0, 3.0], "y": np.array([4, 5, 6]), "names": ["a", "bb"], "x_attrs": {"axis": "x"}},
        "title": "scan 7",
        "n": 3,
        "_attrs": {"NX_class": "NXentry"},
    }
    lock = threading.RLock()
    dump(data, tmp_path / "out.h5", lock=lock)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert np.array_equal(f["image"][:], data["image"]) and f["image"].compression is None
        assert f["image"].attrs["units"] == "counts" and f["image"].attrs["scale"] == 2.5
        assert list(f["map/x"][:]) == [1.0, 2.0, 3.0] and list(f["map/y"][:]) == [4, 5, 6]
        assert [s.decode() if isinstance(s, bytes) else s for s in f["map/names"][:]] == ["a", "bb"]
        assert f["map/x"].attrs["axis"] == "x"
        assert f["title"][()] in (b"scan 7", "scan 7") and f["n"][()] == 3
        assert f.attrs["NX_class"] == "NXentry"
        assert "image_attrs" not in f and "_attrs" not in f


def test_h5dump_compresses_when_asked(tmp_path: Path) -> None:
    dump({"a": np.zeros((256, 256), dtype=np.float32)}, tmp_path / "c.h5", compression="gzip")
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f["a"].compression == "gzip" and float(f["a"][:].sum()) == 0.0


def test_incremental_buffer_out_of_order_with_gaps() -> None:
    buf = IncrementalBuffer(initial_rows=2, grow_factor=1.5, filler_value=-1)
    assert buf.is_empty() and buf.shape == (0,)
    for index, value in [(0, 10), (3, 13), (1, 11), (7, 17)]:
        buf.add_entry(index, value)
    assert buf.dtype == np.dtype(int) and not buf.is_empty()
    assert list(np.asarray(buf)) == [10, 11, -1, 13, -1, -1, -1, 17]
    assert [buf.has_entry(i) for i in range(9)] == [True, True, False, True, False, False, False, True, False]
    assert list(buf.preview(no_gaps=True)) == [10, 11]
    assert buf[3] == 13 and buf.shape == (8,) and len(buf) == 8
    buf.add_entry(2, 12.7)  # cast to the first entry's dtype
    assert list(buf.preview(no_gaps=True)) == [10, 11, 12, 13]


def test_incremental_buffer_rows_and_no_gaps_view() -> None:
    buf = IncrementalBuffer(no_gaps=True)
    buf.add_entry(1, np.ones(3))
    assert np.asarray(buf).shape == (0, 3)  # row 0 still missing
    buf.add_entry(0, np.zeros(3))
    assert np.array_equal(np.asarray(buf), [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="shape"):
        buf.add_entry(2, np.ones(4))
    for i in range(2, 100):
        buf.add_entry(i, np.full(3, i))
    assert np.asarray(buf).shape == (100, 3) and np.asarray(buf)[99, 0] == 99
    with pytest.raises(ValueError):
        IncrementalBuffer(initial_rows=0)
    with pytest.raises(ValueError):
        IncrementalBuffer(grow_factor=1)


def test_import_class_and_parameters_hash() -> None:
    assert import_class("dranspose.helpers.incremental:IncrementalBuffer") is IncrementalBuffer
    with pytest.raises(ConfigError, match="no attribute"):
        import_class("dranspose.helpers.incremental:Nope")
    p = {"a": WorkParameter(name="a", data=b"1"), "b": WorkParameter(name="b", data=b"x")}
    q = {"b": WorkParameter(name="b", data=b"x"), "a": WorkParameter(name="a", data=b"1")}
    assert parameters_hash(p) == parameters_hash(q) != parameters_hash({"a": p["a"]})


def test_parameter_adapters_and_class_level_conversions() -> None:
    assert IntParameter.from_bytes(b"12") == 12 and IntParameter.from_bytes(b"x") == 0
    assert FloatParameter.from_bytes(b"1.5") == 1.5 and BoolParameter.from_bytes(b"True") is True
    assert BoolParameter.to_bytes(False) == b"False" and StrParameter.to_bytes(7) == b"7"
    assert IntParameter(name="n").from_bytes(b"3") == 3
    descs = ParameterList.validate_json(b'[{"name": "n", "dtype": "int", "default": 4}, {"name": "s", "dtype": "str"}]')
    assert isinstance(descs[0], IntParameter) and descs[0].default == 4 and isinstance(descs[1], StrParameter)
    assert isinstance(Parameter.validate_python({"name": "b", "dtype": "bool"}), BoolParameter)


def test_cbor_message_hooks_round_trip() -> None:
    msg = InternalWorkerMessage(event_number=4, streams={"eiger": StreamData(typ="STINS", frames=[b"h", b"\x00" * 10])})
    data = cbor2.dumps([msg, msg], default=message_encoder)
    back = cbor2.loads(data, tag_hook=message_tag_hook)
    assert [m.event_number for m in back] == [4, 4]
    assert back[0].streams["eiger"].typ == "STINS" and back[0].streams["eiger"].frames == [b"h", b"\x00" * 10]
    two = cbor2.dumps(cbor2.CBORTag(42877, [5, {}]))  # the 2-element form
    assert cbor2.loads(two, tag_hook=message_tag_hook).event_number == 5
    with pytest.raises(TypeError, match="cannot CBOR-encode object"):
        cbor2.dumps(object(), default=message_encoder)


def test_old_state_models() -> None:
    ing = IngesterState(name="i", url="tcp://h:10000", streams=["s"])
    red = ReducerState(url="tcp://h:10200")
    ens = EnsembleState(ingesters=[ing], workers=[], reducer=red)
    assert ens.get_streams() == ["s"] and ens.get_workers() == []
    import uuid

    assert WorkerUpdate(state="ready", worker="w").source == "worker"
    assert ControllerUpdate(mapping_uuid=uuid.uuid4(), parameters_version={}).finished is False


def test_tick_rule_one_tick_per_interval_across_workers() -> None:
    now = [0.0]
    clock = TickClock(1.0, n_workers=2, now=lambda: now[0])
    ticks = []
    for t in np.arange(0, 10, 0.5):
        now[0] = float(t)
        ticks.append(clock())
    assert sum(ticks) == 5 and ticks[0]  # every 2 s for this worker: ~1 per second across two
    assert not any(TickClock(None)() for _ in range(3))
