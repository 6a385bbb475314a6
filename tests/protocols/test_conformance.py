"""Conformance of every registered wire protocol (``dranspose.protocols.REGISTRY``) against the
kit (``kit.py``): the module contract, one owner per protocol (the compat modules only
re-export), cut + decode of a synthetic series, the compat parser, the part-count check, and
the raw captures of tests/data. Protocol-specific behaviour lives in the other test modules."""

from __future__ import annotations

import importlib
import inspect
import pickle
from collections import Counter

import cbor2
import pytest

from dranspose.errors import ConfigError, ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import REGISTRY, cutter_factory, protocol_module
from dranspose.protocols.base import Kind
from dranspose.services.ingesters import INGESTER_CLASSES, resolve
from tests.protocols.kit import SPECS
from tests.protocols.proto_helpers import read_capture

TYPS = sorted(REGISTRY)


@pytest.mark.parametrize("typ", TYPS)
def test_module_contract(typ: str) -> None:
    module = protocol_module(typ)
    assert module.__name__ == REGISTRY[typ]
    assert module.TYP == typ
    assert module.SOCKET in ("PULL", "SUB", "TCP", "HTTP")
    assert cutter_factory(typ) is module.CUTTER
    cutter = module.CUTTER()
    assert cutter.typ == typ and isinstance(cutter.has_start, bool)
    assert callable(module.decode)


def test_registry_feeds_the_ingester_classes() -> None:
    served = {typ for _, typ in INGESTER_CLASSES.values() if typ is not None}
    assert served == set(REGISTRY)
    for name, (pattern, typ) in INGESTER_CLASSES.items():
        got_pattern, factory = resolve(name)
        assert got_pattern == pattern
        assert factory().typ == (typ or "raw")
    with pytest.raises(ConfigError, match="unknown protocol typ"):
        protocol_module("NOPE")


@pytest.mark.parametrize("typ", TYPS)
def test_compat_modules_only_reexport(typ: str) -> None:
    """protocols/X.py owns the models and the parser; data/X.py and middlewares/X.py hold no
    code of their own, and packets keep pickling under the public ``dranspose.data.X`` path."""
    spec = SPECS[typ]
    module = protocol_module(typ)
    if spec.data_module is None:
        return
    data = importlib.import_module(spec.data_module)
    for name in spec.models:
        obj = getattr(data, name)
        assert getattr(module, name) is obj, name
    local = [n for n, v in vars(data).items() if (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == data.__name__]
    assert all(getattr(module, n, None) is vars(data)[n] for n in local), local  # compat-named classes only
    mw_name = spec.data_module.replace(".data.", ".middlewares.").replace("xspress3", "xspress")
    middleware = importlib.import_module(mw_name)
    for name, obj in vars(middleware).items():
        if callable(obj) and not name.startswith("_"):
            assert getattr(module, name) is obj, name
    for name in spec.models:
        cls = getattr(module, name)
        if isinstance(cls, type) and cls.__module__ == spec.data_module:
            assert pickle.loads(pickle.dumps(cls)) is cls


@pytest.mark.parametrize("typ", TYPS)
def test_series_cuts_decodes_and_parses(typ: str) -> None:
    spec = SPECS[typ]
    cutter = protocol_module(typ).CUTTER()
    units = [u for msg in spec.series() for u in cutter.feed(msg)]
    assert [u.kind for u in units] == [Kind.START] + [Kind.DATA] * spec.n_data + [Kind.END]
    numbers = [u.frame_number for u in units if u.kind is Kind.DATA]
    assert all(n is None for n in numbers) or numbers == sorted(numbers)
    decode = spec.decoder()
    decoded = [decode(u.frames) for u in units]
    assert all(d is not None for d in decoded)
    if spec.parse is not None:
        parse = spec.parse()
        parsed = [parse(StreamData(typ=typ, frames=list(u.frames))) for u in units]
        assert len({type(p) for p in parsed}) >= 2  # start/data/end come out as their own classes
        with pytest.raises(ProtocolError, match="typ"):
            spec.parse()(StreamData(typ="other", frames=list(units[0].frames)))
        for packet in parsed:  # packets pickle by their public compat path and come back equal
            back = pickle.loads(pickle.dumps(packet))
            assert type(back) is type(packet)
    cutter.reset()
    assert [u.kind for u in cutter.feed(spec.series()[0])] in ([Kind.START], [])


@pytest.mark.parametrize("typ", TYPS)
def test_garbage_and_wrong_part_counts_are_protocol_errors(typ: str) -> None:
    cutter = protocol_module(typ).CUTTER()
    decode = SPECS[typ].decoder()
    unhashable = b'{"htype": [], "type": {}, "message_type": [], "status": [], "what": []}'  # fuzz finding
    subarray = b'{"htype": "image", "frame": 0, "shape": [1], "type": "(2,,1)f4", "compression": "none"}'  # fuzz finding
    garbage = [b""], [b"\x00\xff garbage"], [b"{}"] * 7, [b"[1, 2]"], [unhashable], [cbor2.dumps({"type": []})], [subarray, b"\0" * 8]
    for msg in garbage:
        try:
            cutter.feed(msg)
        except ProtocolError:
            pass
        with pytest.raises(ProtocolError):
            decode(msg)
    with pytest.raises(ProtocolError):
        decode([])


@pytest.mark.parametrize("typ", sorted(t for t in TYPS if SPECS[t].captures))
def test_captures_cut_into_series(typ: str) -> None:
    for capture, n_data in SPECS[typ].captures.items():
        cutter = protocol_module(typ).CUTTER()
        units = [u for msg in read_capture(capture) for u in cutter.feed(msg)]
        assert Counter(u.kind for u in units) == {Kind.START: 1, Kind.DATA: n_data, Kind.END: 1}, capture
        assert units[0].kind is Kind.START and units[-1].kind is Kind.END


def test_old_base_classes_and_what_enum() -> None:
    """Issue 12: the old public names at the old paths, with the old shapes."""
    from dranspose.data.albaem import AlbaemBase, AlbaemData
    from dranspose.data.contrast import ContrastBase, ContrastRunning
    from dranspose.data.lecroy import LecroyEnd, LecroyPrepare, LecroySeqEnd, LecroySeqStart, WhatEnum
    from dranspose.data.pcap import PCAPBase, PCAPData

    assert [(m.name, int(m)) for m in WhatEnum] == [("PREPARE", 0), ("START", 1), ("SEQEND", 2), ("STOP", 3)]
    for cls, what in ((LecroyPrepare, WhatEnum.PREPARE), (LecroySeqStart, WhatEnum.START),
                      (LecroySeqEnd, WhatEnum.SEQEND), (LecroyEnd, WhatEnum.STOP)):  # fmt: skip
        assert cls.model_validate({"htype": "msg", "what": int(what), "frame": 0}).what == what
    assert issubclass(ContrastRunning, ContrastBase) and issubclass(PCAPData, PCAPBase) and issubclass(AlbaemData, AlbaemBase)
    assert {"message_id", "version"} <= set(PCAPBase.model_fields) and {"message_id", "version"} <= set(AlbaemBase.model_fields)
    point = ContrastRunning(dt=0.1, x=1.5)
    assert isinstance(point, ContrastBase)
    frames = point.to_stream_data().frames
    assert pickle.loads(frames[0])["x"] == 1.5  # a base-class method, as before
    assert PCAPData(message_id=3, frame_number=0).to_stream_data().typ == "PCAP"
