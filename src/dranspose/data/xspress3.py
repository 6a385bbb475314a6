"""Xspress3 packets (compat ``dranspose.data.xspress3``): re-exported from :mod:`dranspose.protocols.xspress3`."""

from dranspose.protocols.xspress3 import (
    XspressBase,
    XspressEnd,
    XspressImage,
    XspressPacket,
    XspressPacketType,
    XspressStart,
)

__all__ = [
    "XspressBase",
    "XspressEnd",
    "XspressImage",
    "XspressPacket",
    "XspressPacketType",
    "XspressStart",
]
