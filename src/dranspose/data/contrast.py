"""contrast packets (compat ``dranspose.data.contrast``): re-exported from :mod:`dranspose.protocols.contrast`."""

from dranspose.protocols.contrast import (
    ContrastBase,
    ContrastFinished,
    ContrastHeartbeat,
    ContrastPacket,
    ContrastPacketType,
    ContrastRunning,
    ContrastStarted,
    _ContrastBase,
)

__all__ = [
    "ContrastBase",
    "ContrastFinished",
    "ContrastHeartbeat",
    "ContrastPacket",
    "ContrastPacketType",
    "ContrastRunning",
    "ContrastStarted",
    "_ContrastBase",
]
