"""The protocol conformance and fuzz kit: one :class:`Spec` per registered protocol.

Each spec builds a small synthetic series (upstream messages: start, ``n_data`` data units,
end), says how to decode a unit (with the per-stream state some protocols need) and which
compat parser and data classes belong to it. ``test_conformance.py`` checks every protocol
of :data:`dranspose.protocols.REGISTRY` against its spec; ``test_fuzz.py`` and
``bench/fuzz_wire.py`` feed :func:`run_target` with mutated inputs seeded by :func:`seeds`.

Fuzz input format: the messages of one upstream stream, joined by :data:`MSG_SEP`, the frames
of a message by :data:`FRAME_SEP` (for ``PCAP_RAW``, a TCP byte stream: :data:`MSG_SEP` marks
where one ``recv`` ends).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import (
    REGISTRY,
    albaem,
    contrast,
    eiger_legacy,
    lecroy,
    pcap,
    positioncap,
    protocol_module,
    sardana,
    stins,
    stream2,
    xspress3,
)
from dranspose.protocols.base import Frame

MSG_SEP = b"\xfe\xedMSG\xfe\xed"
FRAME_SEP = b"\xfe\xedFRM\xfe\xed"
MAX_MESSAGES = 64  # messages one fuzz input is cut into (bounds the work per input)

Decoder = Callable[[Sequence[Frame]], Any]
ARM = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
_PIX = (np.arange(256, dtype=np.uint16) % 7).reshape(16, 16)


@dataclass
class Spec:
    """What the kit knows about one protocol."""

    typ: str
    series: Callable[[], list[list[bytes]]]  # upstream messages of one series
    n_data: int  # DATA units the series cuts into (between one START and one END)
    decoder: Callable[[], Decoder]  # a fresh unit decoder (per-stream state inside)
    parse: Callable[[], Callable[[StreamData], Any]] | None  # the compat parser (fresh state)
    data_module: str | None  # the compat module re-exporting the models
    models: tuple[str, ...] = ()  # model names the compat module must re-export
    captures: dict[str, int] = field(default_factory=dict)  # raw capture -> DATA units in it
    raw: Callable[[], bytes] | None = None  # PCAP_RAW: the series as the TCP byte stream


# ---------------------------------------------------------------- synthetic series


def _stins() -> list[list[bytes]]:
    return [
        stins.encode_header(0, "scan.h5"),
        stins.encode_image(1, 0, _PIX, "bslz4"),
        stins.encode_image(2, 1, _PIX, "lz4"),
        stins.encode_image(3, 2, _PIX, "none"),
        stins.encode_end(4),
    ]


def _eiger() -> list[list[bytes]]:
    return [
        eiger_legacy.encode_header(7, {"x_pixels_in_detector": 16}, header_detail="basic"),
        eiger_legacy.encode_image(7, 0, _PIX),
        eiger_legacy.encode_image(7, 1, _PIX, "lz4<"),
        eiger_legacy.encode_image(7, 2, _PIX, "<"),
        eiger_legacy.encode_end(7),
    ]


def _stream2() -> list[list[bytes]]:
    return [
        stream2.encode_start(3, flatfield={"threshold_1": np.ones((4, 4), np.float32)}),
        stream2.encode_image(3, 0, {"threshold_1": _PIX}, "bslz4"),
        stream2.encode_image(3, 1, {"threshold_1": _PIX, "difference": _PIX[:4]}, "lz4"),
        stream2.encode_image(3, 2, _PIX, "none"),
        stream2.encode_end(3),
    ]


_TAGS = ["ocr", "all_events", "all_good", "clock_ticks", "total_ticks", "reset_ticks", "event_width", "dtc"]


def _xspress() -> list[list[bytes]]:
    meta = [np.arange(2, dtype=np.float64)] * 7 + [np.ones(2)]
    spec = np.arange(16, dtype=np.uint32).reshape(2, 8)
    return [
        xspress3.encode_header("f.h5", limits=[[[0, 0]] * 2] * 2, extra_tags=_TAGS),
        xspress3.encode_image(0, spec, meta),
        *xspress3.encode_legacy(xspress3.encode_image(1, spec, meta)),
        xspress3.encode_end(),
    ]


def _pcap() -> list[list[bytes]]:
    return pcap.encode_series(ARM, {"INENC1.VAL.Mean": [0.5, 1.5, 2.5], "PCAP.BITS0.Value": [1, 2, 3]}, batch=2)


_PC_FIELDS = [
    positioncap.PositionCapField(name="PCAP.TS_TRIG.Value", type="double"),
    positioncap.PositionCapField(name="COUNTER1.OUT.Max", type="int32"),
]


def _positioncap_raw() -> bytes:
    return positioncap.encode_stream(ARM, _PC_FIELDS, [[0.5, 1], [1.0, -2], [1.5, 3]])


def _positioncap() -> list[list[bytes]]:
    return [[m] for m in positioncap.PositionCapSplitter(expect_ok=False).feed(_positioncap_raw())]


def _contrast() -> list[list[bytes]]:
    return [
        contrast.encode_started(5, "/data", "mesh x 0 1 2", {"x": 0.5}),
        contrast.encode_running({"x": 0.0, "det": {"counts": np.arange(3.0)}}, dt=0.1),
        contrast.encode_heartbeat(),
        contrast.encode_running({"x": 1.0, "det": {"counts": np.arange(3.0)}}, dt=0.2),
        contrast.encode_finished(5, "/data", "mesh x 0 1 2"),
    ]


def _albaem() -> list[list[bytes]]:
    return [
        albaem.encode_start(1),
        albaem.encode_data(2, 0, [1e-9, 2e-9, 3e-9, 4e-9], 0.1),
        albaem.encode_data(3, 1, [1e-9, 2e-9, 3e-9, 4e-9], 0.2, key_style="CHAN"),
        albaem.encode_end(4),
    ]


def _lecroy() -> list[list[bytes]]:
    trace = np.arange(8.0).reshape(2, 4)
    msgs = [lecroy.encode_prepare(0), lecroy.encode_seqstart(0, -1, 0, [1, 2])]
    for seq in range(2):  # continuous mode: one SEQSTART, two sequences
        msgs += [lecroy.encode_traces(1, seq, trace, [1.0, 2.0]), lecroy.encode_traces(2, seq, trace, [1.0, 2.0])]
        msgs.append(lecroy.encode_seqend(seq + 1))
    msgs.append(lecroy.encode_stop(3, 4))
    return msgs


def _sardana() -> list[list[bytes]]:
    bodies = [
        ("/v1/data_desc", b'{"serialno":1,"scandir":"/d","title":"ascan","column_desc":[{"name":"m"}]}'),
        ("/v1/record_data", b'{"timestamp":0.5,"point_nb":0,"m":0.1}'),
        ("/v1/custom_data", b"{}"),
        ("/v1/record_data", b'{"timestamp":0.7,"point_nb":1,"m":0.2}'),
        ("/v1/record_end", b""),
    ]
    return [m for path, body in bodies if (m := sardana.message_from_request(path, body)) is not None]


# ---------------------------------------------------------------- decoders with per-stream state


def _xspress_decoder() -> Decoder:
    parser = xspress3.XspressParser()
    return lambda frames: parser.parse(StreamData(typ=xspress3.TYP, frames=list(frames)))


def _positioncap_decoder() -> Decoder:
    state = positioncap.HeaderState()
    return lambda frames: positioncap.decode(frames, state)


def _stream2_decoder() -> Decoder:
    decoder = stream2.Stream2Decoder()

    def decode(frames: Sequence[Frame]) -> Any:
        if len(frames) != 1:
            raise ProtocolError(f"stream v2 message has {len(frames)} parts, expected 1")
        return decoder.decode(frames[0])

    return decode


def _stateless(fn: Decoder) -> Callable[[], Decoder]:
    return lambda: fn


SPECS: dict[str, Spec] = {
    s.typ: s
    for s in [
        Spec("STINS", _stins, 3, _stateless(stins.decode), lambda: stins.parse, "dranspose.data.stream1",
             ("Stream1", "Stream1Start", "Stream1Data", "Stream1End", "Stream1Packet")),
        Spec("EIGER_LEGACY", _eiger, 3, _stateless(eiger_legacy.decode), lambda: eiger_legacy.parse,
             "dranspose.data.eiger_legacy",
             ("EigerLegacy", "EigerLegacyHeader", "EigerLegacyImage", "EigerLegacyEnd", "EigerLegacyPacket"),
             {"eiger-small.cbors": 3}),
        Spec("STREAM2", _stream2, 3, _stream2_decoder, None, None),
        Spec("xspress", _xspress, 2, _xspress_decoder, lambda: xspress3.XspressParser().parse,
             "dranspose.data.xspress3", ("XspressBase", "XspressStart", "XspressImage", "XspressEnd", "XspressPacket"),
             {"xspress3-dump.cbors": 20}),
        Spec("PCAP", _pcap, 3, _stateless(pcap.decode), lambda: pcap.parse, "dranspose.data.pcap",
             ("PCAPBase", "PCAPStart", "PCAPData", "PCAPEnd", "PCAPPacket"), {"pcap-zmq.cbors": 1500}),
        Spec("PCAP_RAW", _positioncap, 3, _positioncap_decoder, lambda: positioncap.PositioncapParser().parse,
             "dranspose.data.positioncap",
             ("PositionCapField", "PositionCapStart", "PositionCapValues", "PositionCapEnd", "PositionCapPacket"),
             raw=_positioncap_raw),
        Spec("contrast", _contrast, 2, _stateless(contrast.decode), lambda: contrast.parse, "dranspose.data.contrast",
             ("ContrastBase", "ContrastStarted", "ContrastRunning", "ContrastFinished", "ContrastHeartbeat",
              "ContrastPacket"), {"contrast-dump.cbors": 20}),
        Spec("albaem", _albaem, 2, _stateless(albaem.decode), lambda: albaem.parse, "dranspose.data.albaem",
             ("AlbaemBase", "AlbaemStart", "AlbaemData", "AlbaemEnd", "AlbaemPacket"), {"albaem-dump.cbors": 4}),
        Spec("lecroy_9fwdWp6Rq7", _lecroy, 2, _stateless(lecroy.decode), lambda: lecroy.parse, "dranspose.data.lecroy",
             ("LECROY_TYPE", "WhatEnum", "LecroyBase", "LecroyPrepare", "LecroySeqStart", "LecroySeqEnd", "LecroyEnd",
              "LecroyData", "LecroyParsed", "LecroyPacket"), {"maui-02-continuous-3.cbor.gz": 2}),
        Spec("sardana", _sardana, 2, _stateless(sardana.decode), lambda: sardana.parse, "dranspose.data.sardana",
             ("SardanaBase", "SardanaDataDescription", "SardanaRecordData", "SardanaRecordEnd", "SardanaPacket")),
    ]
}  # fmt: skip
assert set(SPECS) == set(REGISTRY), "every registered protocol needs a kit spec"


# ---------------------------------------------------------------- fuzzing


def encode_input(messages: Sequence[Sequence[bytes]]) -> bytes:
    """One fuzz input holding ``messages``."""
    return MSG_SEP.join(FRAME_SEP.join(bytes(f) for f in msg) for msg in messages)


def split_input(data: bytes) -> list[list[bytes]]:
    """The messages of a fuzz input (at most :data:`MAX_MESSAGES`)."""
    return [m.split(FRAME_SEP) for m in itertools.islice(data.split(MSG_SEP), MAX_MESSAGES)]


def seeds(typ: str) -> list[bytes]:
    """Valid inputs for ``typ``: the spec's series, and variants the protocol allows."""
    spec = SPECS[typ]
    if spec.raw is not None:
        raw = positioncap.OK_REPLY + spec.raw()
        return [raw, MSG_SEP.join(raw[i : i + 17] for i in range(0, len(raw), 17)), raw + spec.raw()]
    series = spec.series()
    return [encode_input(series), encode_input(series[1:]), encode_input(series[:2] + series[-1:])]


def _ignore(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ProtocolError:  # CorruptFrameError is one too: the documented failure
        return None


def run_target(typ: str, data: bytes) -> int:
    """Feed one fuzz input through ``typ``'s cutter, decoder and compat parser (fresh state).

    Anything but ProtocolError propagates (a finding). Returns the number of units decoded.
    """
    spec = SPECS[typ]
    module = protocol_module(typ)
    if spec.raw is not None:  # the TCP byte stream goes through the splitter first
        splitter = positioncap.PositionCapSplitter()
        messages = [[m] for chunk in itertools.islice(data.split(MSG_SEP), MAX_MESSAGES) for m in splitter.feed(chunk)]
        assert len(splitter.take_errors()) <= 100
    else:
        messages = split_input(data)
    if typ == "sardana":
        paths = list(sardana.ENDPOINTS)
        for i, msg in enumerate(messages):
            _ignore(lambda: sardana.message_from_request(paths[i % len(paths)], msg[0]))
    cutter = module.CUTTER()
    decode = spec.decoder()
    parse = spec.parse() if spec.parse is not None else None
    decoded = 0
    for msg in messages:
        _ignore(lambda: decode(msg))
        units = _ignore(lambda: cutter.feed(msg)) or []
        for unit in units:
            if _ignore(lambda: decode(unit.frames)) is not None:
                decoded += 1
            if parse is not None:
                _ignore(lambda: parse(StreamData(typ=typ, frames=list(unit.frames))))
    return decoded
