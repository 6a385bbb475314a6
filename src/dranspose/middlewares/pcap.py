"""Compat parser for PandA PCAP-over-ZeroMQ streams (``dranspose.middlewares.pcap``)."""

from __future__ import annotations

from dranspose.data.pcap import PCAPPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import pcap


def parse(data: StreamData) -> PCAPPacketType:
    """Decode one ``PCAP`` unit (1 frame) into PCAPStart | PCAPData | PCAPEnd. Raises ProtocolError."""
    if data.typ != pcap.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {pcap.TYP!r}")
    return pcap.decode(data.frames)
