"""PandA PCAP-over-ZeroMQ packets (compat ``dranspose.data.pcap``): mutable pydantic models.

A ``PCAPData`` produced by the ingester holds one sample: every capture column is an extra
attribute with a scalar value (``getattr(pkt, "INENC3.VAL.Mean")`` or ``pkt.model_extra``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData


class _PCAPBase(BaseModel):
    model_config = ConfigDict(extra="allow")

    message_id: int = 0
    version: int = 1

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import pcap

        return StreamData(typ=pcap.TYP, frames=[self.model_dump_json().encode()])


class PCAPStart(_PCAPBase):
    message_type: Literal["series-start"] = "series-start"
    arm_time: datetime


class PCAPData(_PCAPBase):
    message_type: Literal["data"] = "data"
    frame_number: int

    def columns(self) -> dict[str, object]:
        """The capture values of this message (extra keys), in wire order."""
        return dict(self.model_extra or {})


class PCAPEnd(_PCAPBase):
    message_type: Literal["series-end"] = "series-end"


PCAPPacketType = Union[PCAPStart, PCAPData, PCAPEnd]
PCAPPacket: TypeAdapter[PCAPPacketType] = TypeAdapter(PCAPPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
