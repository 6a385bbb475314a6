"""AlbaEM electrometer stream (PROTOCOLS §11, typ ``albaem``): models, decode, encode, cutter.

Wire: single-part JSON messages ``series-start``, ``data`` (``frame_number``, ``timestamp``,
``acquisition_timestamp``, currents) and ``series-end``. Received over SUB (dranspose) or PULL
(contrast's client): both are fine, see :data:`SOCKETS`. Currents are named ``channel1``..4 or
``CHAN01``..04 (gap §15.7); :func:`decode` accepts both and fills ``channel1``..4 (the original
keys stay available as extras).

A data message without ``message_type`` but with a timestamp or channel keys (the bare form
contrast reads) is taken as data; such a stream has no start message, so build its cutter with
``AlbaemCutter(has_start=False)``. The models are re-exported by ``dranspose.data.albaem`` and
:func:`parse` by ``dranspose.middlewares.albaem``.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import dumps_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, SingleMessageCutter, Unit, compat_module

TYP = "albaem"
SOCKET = "SUB"
SOCKETS = ("SUB", "PULL")


# --- models ------------------------------------------------------------------------------------


class AlbaemBase(BaseModel):
    """Fields of every AlbaEM message; mutable, extra keys allowed."""

    model_config = ConfigDict(extra="allow")

    message_id: int | None = None
    version: int = 1

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[self.model_dump_json(exclude_none=True).encode()])


_AlbaemBase = AlbaemBase  # the name before it was public


class AlbaemStart(AlbaemBase):
    message_type: Literal["series-start"] = "series-start"


class AlbaemData(AlbaemBase):
    message_type: Literal["data"] = "data"
    frame_number: int | None = None
    timestamp: float | None = None
    acquisition_timestamp: int | None = None
    channel1: float | None = None
    channel2: float | None = None
    channel3: float | None = None
    channel4: float | None = None

    def channels(self) -> list[float | None]:
        """The four currents (A), channel 1 first."""
        return [self.channel1, self.channel2, self.channel3, self.channel4]


class AlbaemEnd(AlbaemBase):
    message_type: Literal["series-end"] = "series-end"
    detector_specific: dict[str, Any] | None = None


AlbaemPacketType = Union[AlbaemStart, AlbaemData, AlbaemEnd]
AlbaemPacket: TypeAdapter[AlbaemPacketType] = TypeAdapter(AlbaemPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module("dranspose.data.albaem", AlbaemBase, AlbaemStart, AlbaemData, AlbaemEnd)


# --- decoding ----------------------------------------------------------------------------------

_CHAN = re.compile(r"^CHAN0?([1-4])$")
_MODELS: dict[str, Any] = {"series-start": AlbaemStart, "data": AlbaemData, "series-end": AlbaemEnd}
_KINDS = {"series-start": Kind.START, "data": Kind.DATA, "series-end": Kind.END}


def _message_type(msg: dict[str, Any]) -> str:
    mtype = msg.get("message_type")
    if mtype is None and ("timestamp" in msg or any(_CHAN.match(k) or k.startswith("channel") for k in msg)):
        return "data"
    if not isinstance(mtype, str) or mtype not in _MODELS:
        raise ProtocolError(f"albaem message_type {mtype!r:.40} unknown")
    return mtype


def normalize(msg: dict[str, Any]) -> dict[str, Any]:
    """Copy ``CHANnn`` values to ``channelN`` (unless already present)."""
    out = dict(msg)
    for key, value in msg.items():
        m = _CHAN.match(key)
        if m:
            out.setdefault(f"channel{m.group(1)}", value)
    return out


def decode(frames: Sequence[Frame]) -> AlbaemPacketType:
    """Decode one unit (1 frame). Raises ProtocolError."""
    if len(frames) != 1:
        raise ProtocolError(f"albaem unit has {len(frames)} frames, expected 1")
    msg = loads_json_object(frames[0], "albaem message")
    mtype = _message_type(msg)
    body = normalize(msg) if mtype == "data" else dict(msg)
    body["message_type"] = mtype
    try:
        return _MODELS[mtype].model_validate(body)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ProtocolError(f"albaem {mtype} invalid: {exc}") from exc


def parse(data: StreamData) -> AlbaemPacketType:
    """Decode one ``albaem`` stream unit into AlbaemStart | AlbaemData | AlbaemEnd; ``channel1``..4
    are filled from either key naming. Raises ProtocolError (a ValueError)."""
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    return decode(data.frames)


# --- stream cutting ----------------------------------------------------------------------------


class AlbaemCutter(SingleMessageCutter):
    """series-start -> START, data -> DATA, series-end -> END; frames forwarded unchanged."""

    typ = TYP

    def __init__(self, has_start: bool = True) -> None:
        self.has_start = has_start

    def units(self, frame: Frame) -> list[Unit]:
        msg = loads_json_object(frame, "albaem message")
        mtype = _message_type(msg)
        frame_no = msg.get("frame_number")
        return [Unit(_KINDS[mtype], [frame], frame_number=frame_no if type(frame_no) is int else None)]


CUTTER = AlbaemCutter


# --- synthetic encoding ------------------------------------------------------------------------


def encode_start(message_id: int = 1) -> list[bytes]:
    return [dumps_json({"version": 1, "message_type": "series-start", "message_id": message_id})]


def encode_data(
    message_id: int,
    frame_number: int,
    currents: Sequence[float],
    timestamp: float,
    acquisition_timestamp: int = 0,
    key_style: str = "channel",
) -> list[bytes]:
    """A data message; ``key_style`` ``"channel"`` (channel1..) or ``"CHAN"`` (CHAN01..)."""
    msg: dict[str, Any] = {
        "version": 1,
        "message_type": "data",
        "message_id": message_id,
        "frame_number": frame_number,
        "timestamp": timestamp,
        "acquisition_timestamp": acquisition_timestamp,
    }
    for i, value in enumerate(currents, start=1):
        msg[f"channel{i}" if key_style == "channel" else f"CHAN{i:02d}"] = float(value)
    return [dumps_json(msg)]


def encode_end(message_id: int, read_overflow: bool = False, memory_overflow: bool = False) -> list[bytes]:
    return [
        dumps_json(
            {
                "version": 1,
                "message_type": "series-end",
                "message_id": message_id,
                "detector_specific": {"read_overflow": read_overflow, "memory_overflow": memory_overflow},
            }
        )
    ]
