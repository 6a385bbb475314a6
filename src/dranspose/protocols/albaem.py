"""AlbaEM electrometer stream (PROTOCOLS §11, typ ``albaem``).

Wire: single-part JSON messages ``series-start``, ``data`` (``frame_number``, ``timestamp``,
``acquisition_timestamp``, currents) and ``series-end``. Received over SUB (dranspose) or PULL
(contrast's client): both are fine, see :data:`SOCKETS`. Currents are named ``channel1``..4 or
``CHAN01``..04 (gap §15.7); :func:`decode` accepts both and fills ``channel1``..4.

A data message without ``message_type`` but with a timestamp or channel keys (the bare form
contrast reads) is taken as data; such a stream has no start message, so build its cutter with
``AlbaemCutter(has_start=False)``.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from dranspose.data.albaem import AlbaemData, AlbaemEnd, AlbaemPacketType, AlbaemStart
from dranspose.errors import ProtocolError
from dranspose.protocols._wire import dumps_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, Unit

TYP = "albaem"
SOCKET = "SUB"
SOCKETS = ("SUB", "PULL")

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


class AlbaemCutter:
    """series-start -> START, data -> DATA, series-end -> END; frames forwarded unchanged."""

    typ = TYP

    def __init__(self, has_start: bool = True) -> None:
        self.has_start = has_start

    def reset(self) -> None:
        pass

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            raise ProtocolError(f"albaem message has {len(parts)} parts, expected 1")
        msg = loads_json_object(parts[0], "albaem message")
        mtype = _message_type(msg)
        frame_no = msg.get("frame_number")
        return [Unit(_KINDS[mtype], [parts[0]], frame_number=frame_no if type(frame_no) is int else None)]


CUTTER = AlbaemCutter


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
