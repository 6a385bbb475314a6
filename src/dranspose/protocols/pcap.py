"""PandA position capture published over ZeroMQ (PROTOCOLS §7, typ ``PCAP``).

Wire: a PUB socket sends single-part JSON messages: ``series-start`` (with ``arm_time``),
``data`` messages each carrying a *batch* of samples (every list value is a column, all lists
equally long, ``frame_number`` = index of the batch's first sample) and ``series-end``.

:class:`PCAPCutter` splits each data message into one unit per sample: a new compact JSON object
in which every list is replaced by its i-th value and ``frame_number`` by ``frame_number + i``;
other scalars are copied. So ``decode`` of a unit gives that sample. Start and end frames are
forwarded unchanged. The models are re-exported by ``dranspose.data.pcap`` and :func:`parse` by
``dranspose.middlewares.pcap``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Literal, Mapping, Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import dumps_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, SingleMessageCutter, Unit, compat_module

log = logging.getLogger(__name__)

TYP = "PCAP"
SOCKET = "SUB"


# --- models ------------------------------------------------------------------------------------


class PCAPBase(BaseModel):
    """Fields of every PCAP message; mutable, extra keys allowed. A ``PCAPData`` produced by the
    ingester holds one sample: every capture column is an extra attribute with a scalar value
    (``getattr(pkt, "INENC3.VAL.Mean")`` or ``pkt.model_extra``)."""

    model_config = ConfigDict(extra="allow")

    message_id: int = 0
    version: int = 1

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[self.model_dump_json().encode()])


_PCAPBase = PCAPBase  # the name before it was public


class PCAPStart(PCAPBase):
    message_type: Literal["series-start"] = "series-start"
    arm_time: datetime


class PCAPData(PCAPBase):
    message_type: Literal["data"] = "data"
    frame_number: int

    def columns(self) -> dict[str, object]:
        """The capture values of this message (extra keys), in wire order."""
        return dict(self.model_extra or {})


class PCAPEnd(PCAPBase):
    message_type: Literal["series-end"] = "series-end"


PCAPPacketType = Union[PCAPStart, PCAPData, PCAPEnd]
PCAPPacket: TypeAdapter[PCAPPacketType] = TypeAdapter(PCAPPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module("dranspose.data.pcap", PCAPBase, PCAPStart, PCAPData, PCAPEnd)


# --- decoding ----------------------------------------------------------------------------------

_MODELS: dict[str, type[PCAPStart] | type[PCAPData] | type[PCAPEnd]] = {
    "series-start": PCAPStart,
    "data": PCAPData,
    "series-end": PCAPEnd,
}


def decode(frames: Sequence[Frame]) -> PCAPPacketType:
    """Decode one unit (exactly 1 frame). Raises ProtocolError."""
    if len(frames) != 1:
        raise ProtocolError(f"PCAP unit has {len(frames)} frames, expected 1")
    msg = loads_json_object(frames[0], "PCAP message")
    mtype = msg.get("message_type")
    model = _MODELS.get(mtype) if isinstance(mtype, str) else None
    if model is None:
        raise ProtocolError(f"PCAP message_type {msg.get('message_type')!r:.40} unknown")
    try:
        return model.model_validate(msg)
    except ValueError as exc:
        raise ProtocolError(f"PCAP {msg.get('message_type')} invalid: {exc}") from exc


def parse(data: StreamData) -> PCAPPacketType:
    """Decode one ``PCAP`` stream unit (1 frame) into PCAPStart | PCAPData | PCAPEnd. Raises ProtocolError."""
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    return decode(data.frames)


MAX_FIELDS = 1024  # keys of one message (a PandA captures at most a few hundred fields)
MAX_SAMPLES = 1 << 16  # samples in one batched data message
MAX_SPLIT_BYTES = 64 * 1024 * 1024  # bytes the per-sample messages of one message may add up to


def split_samples(msg: Mapping[str, Any]) -> list[bytes]:
    """One compact JSON object per sample of a batched data message.

    Bounded: at most :data:`MAX_FIELDS` keys and :data:`MAX_SAMPLES` samples, and the scalars
    copied into every sample may add up to at most :data:`MAX_SPLIT_BYTES` (a large scalar
    times many samples would otherwise multiply one message's size). ProtocolError beyond.
    """
    if len(msg) > MAX_FIELDS:
        raise ProtocolError(f"PCAP message has {len(msg)} fields, more than {MAX_FIELDS}")
    columns = {k: v for k, v in msg.items() if isinstance(v, list)}
    first = msg.get("frame_number")
    if type(first) is not int:
        raise ProtocolError(f"PCAP data frame_number {first!r:.40} is not an int")
    if not columns:
        return [dumps_json(dict(msg))]
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ProtocolError(f"PCAP data columns differ in length: {sorted(lengths)[:8]}")
    (n,) = lengths
    if n > MAX_SAMPLES:
        raise ProtocolError(f"PCAP data message has {n} samples, more than {MAX_SAMPLES}")
    scalars = len(dumps_json({k: v for k, v in msg.items() if k not in columns}))
    if n * scalars > MAX_SPLIT_BYTES:
        raise ProtocolError(f"PCAP data message would split into {n} samples of {scalars} bytes of scalars each")
    out: list[bytes] = []
    sample = dict(msg)
    for i in range(n):
        for key, values in columns.items():
            sample[key] = values[i]
        sample["frame_number"] = first + i
        out.append(dumps_json(sample))
    return out


class PCAPCutter(SingleMessageCutter):
    """series-start -> START, each sample of a data message -> one DATA unit, series-end -> END.

    Data units carry new ``bytes`` (one JSON object per sample); start/end frames are forwarded
    unchanged. Multipart messages and data messages with unequal columns raise ProtocolError.
    Stateless; one instance per stream anyway.
    """

    typ = TYP

    def units(self, frame: Frame) -> list[Unit]:
        msg = loads_json_object(frame, "PCAP message")
        kind = msg.get("message_type")
        if kind == "data":
            samples = split_samples(msg)  # checks that frame_number is an int
            first: int = msg["frame_number"]
            return [Unit(Kind.DATA, [s], frame_number=first + i) for i, s in enumerate(samples)]
        if kind == "series-start":
            return [Unit(Kind.START, [frame])]
        if kind == "series-end":
            return [Unit(Kind.END, [frame])]
        raise ProtocolError(f"PCAP message_type {kind!r:.40} unknown")


CUTTER = PCAPCutter


# --- synthetic encoding ------------------------------------------------------------------------


def _iso_z(when: datetime) -> str:
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="milliseconds") + "Z"


def encode_start(arm_time: datetime, message_id: int = 1) -> list[bytes]:
    return [
        dumps_json(
            {"message_id": message_id, "message_type": "series-start", "version": 1, "arm_time": _iso_z(arm_time)}
        )
    ]


def encode_data(message_id: int, frame_number: int, columns: Mapping[str, Sequence[float]]) -> list[bytes]:
    """A batched data message: ``columns`` maps capture names to equally long value lists."""
    msg: dict[str, Any] = {"message_id": message_id, "message_type": "data", "version": 1, "frame_number": frame_number}
    for key, values in columns.items():
        msg[key] = [float(v) for v in values]
    return [dumps_json(msg)]


def encode_end(message_id: int) -> list[bytes]:
    return [dumps_json({"message_id": message_id, "message_type": "series-end", "version": 1})]


def encode_series(
    arm_time: datetime, columns: Mapping[str, Sequence[float]], batch: int = 15
) -> list[list[bytes]]:
    """A whole series (start, data messages of ``batch`` samples, end) as upstream messages."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    msgs = [encode_start(arm_time, 1)]
    mid = 2
    for first in range(0, n, batch):
        msgs.append(encode_data(mid, first, {k: list(columns[k][first : first + batch]) for k in names}))
        mid += 1
    msgs.append(encode_end(mid))
    return msgs
