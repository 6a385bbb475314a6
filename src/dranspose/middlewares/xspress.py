"""Compat parser for Xspress3 streams (``dranspose.middlewares.xspress``)."""

from __future__ import annotations

from typing import Sequence

from dranspose.data.xspress3 import XspressPacketType, XspressStart
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import xspress3


def parse(data: StreamData, extra_tags: Sequence[str] | None = None) -> XspressPacketType:
    """Decode one ``xspress`` stream unit into XspressStart | XspressImage | XspressEnd.

    ``XspressImage.data`` is a read-only view into the histogram frame; ``meta`` holds the
    per-channel arrays under the compat names (``ocr``, ``AllEvents``, ``AllGood``,
    ``ClockTicks``, ``TotalTicks``, ``ResetTicks``, ``event_widths``, ``dtc``, ``window_counts``)
    and, when ``extra_tags`` (from the header) is given, under those names too.
    Raises ProtocolError (a ValueError) for malformed input.
    """
    if data.typ != xspress3.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {xspress3.TYP!r}")
    return xspress3.decode(data.frames, extra_tags)


class XspressParser:
    """Stateful parser: remembers the header's ``extra_tags`` to name the meta entries."""

    def __init__(self) -> None:
        self.extra_tags: list[str] | None = None

    def parse(self, data: StreamData) -> XspressPacketType:
        packet = parse(data, self.extra_tags)
        if isinstance(packet, XspressStart):
            tags = getattr(packet, "extra_tags", None)
            self.extra_tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else None
        return packet
