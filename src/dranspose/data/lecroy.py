"""LeCroy MAUI oscilloscope packets (compat ``dranspose.data.lecroy``): re-exported from :mod:`dranspose.protocols.lecroy`."""

from dranspose.protocols.lecroy import (
    LECROY_TYPE,
    LecroyBase,
    LecroyData,
    LecroyEnd,
    LecroyPacket,
    LecroyPacketType,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqEnd,
    LecroySeqStart,
    WhatEnum,
)

__all__ = [
    "LECROY_TYPE",
    "LecroyBase",
    "LecroyData",
    "LecroyEnd",
    "LecroyPacket",
    "LecroyPacketType",
    "LecroyParsed",
    "LecroyPrepare",
    "LecroySeqEnd",
    "LecroySeqStart",
    "WhatEnum",
]
