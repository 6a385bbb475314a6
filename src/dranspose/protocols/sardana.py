"""Sardana scans posted over HTTP (PROTOCOLS §10, typ ``sardana``).

Wire: Sardana POSTs JSON bodies to ``/v1/data_desc`` (header), ``/v1/record_data`` (one record)
``/v1/record_end`` (end) and ``/v1/custom_data`` (ignored). The HTTP ingester (the lead's) calls
:func:`message_from_request` for every POST: it validates the body and returns the message to
queue (one compact JSON frame with ``type`` first), ``None`` for ignored endpoints, or raises
ProtocolError, which the server answers with HTTP 422.

:class:`SardanaCutter`: DataDescription -> START, RecordData -> DATA, RecordEnd -> END.
The models are re-exported by ``dranspose.data.sardana`` and :func:`parse` by
``dranspose.middlewares.sardana``.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import dumps_json, loads_json_object
from dranspose.protocols.base import Frame, Kind, SingleMessageCutter, Unit, compat_module

TYP = "sardana"
SOCKET = "HTTP"


# --- models ------------------------------------------------------------------------------------


class SardanaBase(BaseModel):
    """A Sardana packet: mutable, extra keys allowed."""

    model_config = ConfigDict(extra="allow")

    def to_stream_data(self) -> StreamData:
        """One frame: compact JSON with ``type`` first (what the HTTP ingester emits)."""
        return StreamData(typ=TYP, frames=[self.model_dump_json().encode()])


_SardanaBase = SardanaBase  # the name before it was public


class SardanaDataDescription(SardanaBase):
    """Scan header (``POST /v1/data_desc``); extras such as ``column_desc``, ``ref_moveables``."""

    type: Literal["DataDescription"] = "DataDescription"
    serialno: int
    scandir: str
    title: str


class SardanaRecordData(SardanaBase):
    """One record (``POST /v1/record_data``): ``timestamp``, ``point_nb`` and one key per column."""

    type: Literal["RecordData"] = "RecordData"
    timestamp: float


class SardanaRecordEnd(SardanaBase):
    type: Literal["RecordEnd"] = "RecordEnd"


SardanaPacketType = Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd]
SardanaPacket: TypeAdapter[SardanaPacketType] = TypeAdapter(SardanaPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module("dranspose.data.sardana", SardanaBase, SardanaDataDescription, SardanaRecordData, SardanaRecordEnd)


# --- decoding ----------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {
    "DataDescription": SardanaDataDescription,
    "RecordData": SardanaRecordData,
    "RecordEnd": SardanaRecordEnd,
}
# endpoint path -> packet type (None: accepted and ignored)
ENDPOINTS: dict[str, str | None] = {
    "/v1/data_desc": "DataDescription",
    "/v1/record_data": "RecordData",
    "/v1/record_end": "RecordEnd",
    "/v1/custom_data": None,
}
_KINDS = {"DataDescription": Kind.START, "RecordData": Kind.DATA, "RecordEnd": Kind.END}


def _validate(typ: str, body: dict[str, Any]) -> SardanaPacketType:
    given = body.get("type", typ)
    if given != typ:
        raise ProtocolError(f"sardana body type {given!r:.40} does not match endpoint type {typ}")
    try:
        return _MODELS[typ].model_validate({**body, "type": typ})  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ProtocolError(f"sardana {typ} invalid: {exc}") from exc


def message_from_request(path: str, body: bytes | str) -> list[bytes] | None:
    """Turn one POST (endpoint path, raw JSON body) into a message of 1 frame, or None if ignored.

    Raises ProtocolError for an unknown path or an invalid body (answer HTTP 422/404).
    """
    path = "/" + path.strip("/")
    if path not in ENDPOINTS:
        raise ProtocolError(f"sardana endpoint {path!r:.60} unknown")
    typ = ENDPOINTS[path]
    if typ is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    obj = loads_json_object(raw if raw.strip() else b"{}", f"sardana {path} body")
    packet = _validate(typ, obj)
    return [packet.model_dump_json().encode()]


def decode(frames: Sequence[Frame]) -> SardanaPacketType:
    """Decode one unit (1 frame). Raises ProtocolError."""
    if len(frames) != 1:
        raise ProtocolError(f"sardana unit has {len(frames)} frames, expected 1")
    obj = loads_json_object(frames[0], "sardana message")
    typ = obj.get("type")
    if not isinstance(typ, str) or typ not in _MODELS:
        raise ProtocolError(f"sardana type {typ!r:.40} unknown")
    return _validate(typ, obj)


def parse(data: StreamData) -> SardanaPacketType:
    """Decode one ``sardana`` stream unit (1 frame) into SardanaDataDescription |
    SardanaRecordData | SardanaRecordEnd. Raises ProtocolError (a ValueError)."""
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    return decode(data.frames)


# --- stream cutting ----------------------------------------------------------------------------


class SardanaCutter(SingleMessageCutter):
    """Classifies queued Sardana messages by ``type``; frames forwarded unchanged.
    ``frame_number`` of a record is its ``point_nb`` (0-based) when present."""

    typ = TYP

    def units(self, frame: Frame) -> list[Unit]:
        msg = loads_json_object(frame, "sardana message")
        typ = msg.get("type")
        kind = _KINDS.get(typ) if isinstance(typ, str) else None
        if kind is None:
            raise ProtocolError(f"sardana type {typ!r:.40} unknown")
        point = msg.get("point_nb")
        return [Unit(kind, [frame], frame_number=point if type(point) is int else None)]


CUTTER = SardanaCutter


def encode_request(path: str, body: dict[str, Any]) -> bytes:
    """A synthetic POST body (what Sardana would send to ``path``)."""
    return dumps_json(body)
