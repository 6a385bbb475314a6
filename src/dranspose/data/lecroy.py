"""LeCroy MAUI oscilloscope packets (compat ``dranspose.data.lecroy``)."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.event import StreamData

LECROY_TYPE = "lecroy_9fwdWp6Rq7"


class LecroyBase(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    htype: str = "msg"
    frame: int = 0

    def to_stream_data(self) -> StreamData:
        """Control packets: one JSON frame."""
        from dranspose.protocols import lecroy

        return StreamData(typ=LECROY_TYPE, frames=[lecroy.dumps_packet(self)])


class LecroyPrepare(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[0] = 0


class LecroySeqStart(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[1] = 1
    ntriggers: int = -1
    seqno: int = 0
    channels: list[int] = Field(default_factory=list)


class LecroySeqEnd(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[2] = 2


class LecroyEnd(LecroyBase):
    """STOP: the last message of an acquisition; ``frames`` = number of trace messages sent."""

    htype: Literal["msg"] = "msg"
    what: Literal[3] = 3
    frames: int = 0


class LecroyData(LecroyBase):
    """Metadata of one trace message (one channel): shape ``[n_seg, n_pts]`` of ``dtype``."""

    htype: Literal["traces"] = "traces"
    ch: int
    ts: float
    shape: list[int]
    dtype: str = "float64"
    horiz_offset: float = 0.0
    horiz_interval: float = 0.0


class LecroyParsed(LecroySeqStart):
    """One sequence: the SEQSTART fields plus, per channel in arrival order, the trace metadata
    (``meta``), the waveforms (``data``, read-only ``(n_seg, n_pts)`` views) and the per-segment
    trigger times (``timestamps``, epoch seconds)."""

    meta: list[LecroyData] = Field(default_factory=list)
    data: list[Any] = Field(default_factory=list)
    timestamps: list[list[float]] = Field(default_factory=list)

    def to_stream_data(self) -> StreamData:
        """The data unit's frames: SEQSTART, 3 frames per channel, SEQEND."""
        from dranspose.protocols import lecroy

        return StreamData(typ=LECROY_TYPE, frames=lecroy.encode_parsed(self))


LecroyPacketType = Union[LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd, LecroyData, LecroyParsed]
LecroyPacket: TypeAdapter[LecroyPacketType] = TypeAdapter(LecroyPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
