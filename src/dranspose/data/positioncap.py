"""PandA position capture packets (compat ``dranspose.data.positioncap``): re-exported from :mod:`dranspose.protocols.positioncap`."""

from dranspose.protocols.positioncap import (
    PositionCapEnd,
    PositionCapField,
    PositionCapPacket,
    PositionCapPacketType,
    PositionCapStart,
    PositionCapValues,
)

__all__ = [
    "PositionCapEnd",
    "PositionCapField",
    "PositionCapPacket",
    "PositionCapPacketType",
    "PositionCapStart",
    "PositionCapValues",
]
