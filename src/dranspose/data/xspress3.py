"""Xspress3 packets (compat ``dranspose.data.xspress3``): mutable pydantic models, extra keys allowed."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.event import StreamData


class XspressBase(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


class XspressStart(XspressBase):
    """Series header. The multipart form adds ``limits`` and ``extra_tags`` (meta entry names)."""

    htype: Literal["header"] = "header"
    filename: str = ""

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import xspress3

        return StreamData(typ=xspress3.TYP, frames=xspress3.encode_header_dict(self.model_dump()))


class XspressImage(XspressBase):
    """One spectrum frame. ``data`` is a read-only ``(n_channels, n_bins)`` view of the histogram
    frame (absent/None for compressed frames); ``meta`` maps names to the per-channel arrays."""

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    exptime: float | None = 1.0
    type: str = "uint32"
    compression: str | None = "none"
    data: Any = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def to_stream_data(self) -> StreamData:
        """The 3-frame (multipart form) stream data: JSON, raw histogram, pickled meta."""
        from dranspose.protocols import xspress3

        header = self.model_dump(exclude={"data", "meta"})
        return StreamData(typ=xspress3.TYP, frames=xspress3.encode_image_parts(header, self.data, self.meta))


class XspressEnd(XspressBase):
    htype: Literal["series_end"] = "series_end"

    def to_stream_data(self) -> StreamData:
        from dranspose.protocols import xspress3

        return StreamData(typ=xspress3.TYP, frames=xspress3.encode_end())


XspressPacketType = Union[XspressStart, XspressImage, XspressEnd]
XspressPacket: TypeAdapter[XspressPacketType] = TypeAdapter(XspressPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""
