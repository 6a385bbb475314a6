"""Sardana scan packets posted over HTTP (compat ``dranspose.data.sardana``)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData


class _SardanaBase(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_stream_data(self) -> StreamData:
        """One frame: compact JSON with ``type`` first (what the HTTP ingester emits)."""
        from dranspose.protocols import sardana

        return StreamData(typ=sardana.TYP, frames=[self.model_dump_json().encode()])


class SardanaDataDescription(_SardanaBase):
    """Scan header (``POST /v1/data_desc``); extras such as ``column_desc``, ``ref_moveables``."""

    type: Literal["DataDescription"] = "DataDescription"
    serialno: int
    scandir: str
    title: str


class SardanaRecordData(_SardanaBase):
    """One record (``POST /v1/record_data``): ``timestamp``, ``point_nb`` and one key per column."""

    type: Literal["RecordData"] = "RecordData"
    timestamp: float


class SardanaRecordEnd(_SardanaBase):
    type: Literal["RecordEnd"] = "RecordEnd"


SardanaPacketType = Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd]
SardanaPacket: TypeAdapter[SardanaPacketType] = TypeAdapter(SardanaPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
