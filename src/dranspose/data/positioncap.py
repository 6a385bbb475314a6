"""PandA position capture over TCP packets (compat ``dranspose.data.positioncap``)."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData

_INT_TYPES = ("uint32", "int32", "int64", "uint64")


class PositionCapField(BaseModel):
    """One captured field: ``name`` is ``<BLOCK.FIELD>.<CAPTURE>`` (e.g. ``INENC1.VAL.Mean``)."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: str
    value: int | float | None = None

    def parse(self, text: str) -> "PositionCapField":
        """A copy of this field holding ``text`` parsed by type (int for uint32, float for double)."""
        from dranspose.protocols.positioncap import parse_value

        return PositionCapField(name=self.name, type=self.type, value=parse_value(self.type, text, self.name))


class PositionCapStart(BaseModel):
    model_config = ConfigDict(extra="allow")

    arm_time: datetime

    def to_stream_data(self, fields: Sequence[PositionCapField] = ()) -> StreamData:
        """The header block frame announcing ``fields``."""
        from dranspose.protocols import positioncap

        return StreamData(typ=positioncap.TYP, frames=[positioncap.encode_header(self.arm_time, fields)])


class PositionCapValues(BaseModel):
    """One sample: field name -> field with its value, in capture order."""

    model_config = ConfigDict(extra="allow")

    fields: dict[str, PositionCapField] = {}

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import positioncap

        return StreamData(
            typ=positioncap.TYP, frames=[positioncap.encode_values([f.value for f in self.fields.values()])]
        )


class PositionCapEnd(BaseModel):
    """End of the experiment: ``samples`` and ``status`` from the ``END <n> <status>`` line."""

    model_config = ConfigDict(extra="allow")

    samples: int | None = None
    status: str | None = None

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import positioncap

        return StreamData(
            typ=positioncap.TYP, frames=[positioncap.encode_end(self.samples or 0, self.status or "Ok")]
        )


PositionCapPacketType = Union[PositionCapStart, PositionCapValues, PositionCapEnd]
PositionCapPacket: TypeAdapter[PositionCapPacketType] = TypeAdapter(PositionCapPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
