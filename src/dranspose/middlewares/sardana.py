"""Compat parser for Sardana streams (``dranspose.middlewares.sardana``)."""

from __future__ import annotations

from dranspose.data.sardana import SardanaPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import sardana


def parse(data: StreamData) -> SardanaPacketType:
    """Decode one ``sardana`` unit (1 frame) into SardanaDataDescription | SardanaRecordData |
    SardanaRecordEnd. Raises ProtocolError (a ValueError)."""
    if data.typ != sardana.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {sardana.TYP!r}")
    return sardana.decode(data.frames)
