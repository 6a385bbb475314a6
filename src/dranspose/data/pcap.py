"""PandA PCAP-over-ZeroMQ packets (compat ``dranspose.data.pcap``): re-exported from :mod:`dranspose.protocols.pcap`."""

from dranspose.protocols.pcap import (
    PCAPBase,
    PCAPData,
    PCAPEnd,
    PCAPPacket,
    PCAPPacketType,
    PCAPStart,
    _PCAPBase,
)

__all__ = [
    "PCAPBase",
    "PCAPData",
    "PCAPEnd",
    "PCAPPacket",
    "PCAPPacketType",
    "PCAPStart",
    "_PCAPBase",
]
