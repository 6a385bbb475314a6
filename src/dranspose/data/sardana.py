"""Sardana packets (compat ``dranspose.data.sardana``): re-exported from :mod:`dranspose.protocols.sardana`."""

from dranspose.protocols.sardana import (
    SardanaBase,
    SardanaDataDescription,
    SardanaPacket,
    SardanaPacketType,
    SardanaRecordData,
    SardanaRecordEnd,
    _SardanaBase,
)

__all__ = [
    "SardanaBase",
    "SardanaDataDescription",
    "SardanaPacket",
    "SardanaPacketType",
    "SardanaRecordData",
    "SardanaRecordEnd",
    "_SardanaBase",
]
