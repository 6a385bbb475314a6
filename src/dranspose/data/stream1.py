"""STINS packets (compat ``dranspose.data.stream1``): mutable pydantic models, extra keys allowed.

``Stream1Packet`` is a pydantic ``TypeAdapter`` over the three packet classes, as before
(``Stream1Packet.validate_json(frames[0])``).
"""

from __future__ import annotations

from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData


class Stream1(BaseModel):
    """Fields every STINS message carries."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    msg_number: int

    def to_stream_data(self) -> StreamData:
        """The STINS frames of this packet: compact JSON (without ``data``), then the pixels
        when a ``data`` array is set (compressed as ``compression`` says)."""
        frames: list[bytes] = [self.model_dump_json(exclude={"data"}).encode()]
        data = getattr(self, "data", None)
        if data is not None:
            frames.append(_blob(np.asarray(data), getattr(self, "compression", "none")))
        return StreamData(typ="STINS", frames=frames)


def _blob(arr: np.ndarray, compression: str) -> bytes:
    from dranspose.codecs import bslz4_compress, lz4_compress

    if compression == "bslz4":
        return bslz4_compress(arr)
    if compression == "lz4":
        return lz4_compress(arr)
    return np.ascontiguousarray(arr).tobytes()


class Stream1Start(Stream1):
    """Series header (``htype == "header"``)."""

    htype: Literal["header"] = "header"
    filename: str


class Stream1Data(Stream1):
    """One image. After ``middlewares.stream1.parse`` an uncompressed image has a read-only
    ``data`` view of the pixel frame; a compressed one has no ``data`` attribute."""

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    type: str
    compression: str


class Stream1End(Stream1):
    """End of series (``htype == "series_end"``)."""

    htype: Literal["series_end"] = "series_end"


Stream1Packet: TypeAdapter[Any] = TypeAdapter(Union[Stream1Start, Stream1Data, Stream1End])
"""Validates any STINS part-0 JSON into one of the three classes."""
