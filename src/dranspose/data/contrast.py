"""contrast scan packets (compat ``dranspose.data.contrast``): mutable pydantic models.

A running point's values (motor positions, detector values, nested dicts of numpy arrays, file
links) are extra attributes: ``getattr(pkt, "pseudo")`` or ``pkt.model_extra``.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData


class _ContrastBase(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def to_stream_data(self) -> StreamData:
        """One frame: the packet as contrast pickles it (a dict, protocol 2; heartbeats 4)."""
        from dranspose.protocols import contrast

        return StreamData(typ=contrast.TYP, frames=contrast.encode(self.model_dump()))


class ContrastStarted(_ContrastBase):
    status: Literal["started"] = "started"
    path: str = ""
    scannr: int = 0
    description: str = ""


class ContrastRunning(_ContrastBase):
    status: Literal["running"] = "running"
    dt: float | None = None


class ContrastFinished(_ContrastBase):
    """Scan footer. ``status`` is ``finished`` or ``interrupted`` (both end the run)."""

    status: Literal["finished", "interrupted"] = "finished"
    path: str = ""
    scannr: int = 0
    description: str = ""

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"


class ContrastHeartbeat(_ContrastBase):
    status: Literal["heartbeat"] = "heartbeat"


ContrastPacketType = Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat]
ContrastPacket: TypeAdapter[ContrastPacketType] = TypeAdapter(ContrastPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
