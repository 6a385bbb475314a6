"""AlbaEM electrometer packets (compat ``dranspose.data.albaem``).

Two key namings exist (PROTOCOLS §11): dranspose's ``channel1``..``channel4`` and contrast's
``CHAN01``..``CHAN04``. The decoder fills ``channel1``..``channel4`` from either; the original
keys stay available as extras.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData


class _AlbaemBase(BaseModel):
    model_config = ConfigDict(extra="allow")

    message_id: int | None = None
    version: int = 1

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import albaem

        return StreamData(typ=albaem.TYP, frames=[self.model_dump_json(exclude_none=True).encode()])


class AlbaemStart(_AlbaemBase):
    message_type: Literal["series-start"] = "series-start"


class AlbaemData(_AlbaemBase):
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


class AlbaemEnd(_AlbaemBase):
    message_type: Literal["series-end"] = "series-end"
    detector_specific: dict[str, Any] | None = None


AlbaemPacketType = Union[AlbaemStart, AlbaemData, AlbaemEnd]
AlbaemPacket: TypeAdapter[AlbaemPacketType] = TypeAdapter(AlbaemPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
