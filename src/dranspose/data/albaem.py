"""AlbaEM packets (compat ``dranspose.data.albaem``): re-exported from :mod:`dranspose.protocols.albaem`."""

from dranspose.protocols.albaem import (
    AlbaemBase,
    AlbaemData,
    AlbaemEnd,
    AlbaemPacket,
    AlbaemPacketType,
    AlbaemStart,
    _AlbaemBase,
)

__all__ = ["AlbaemBase", "AlbaemData", "AlbaemEnd", "AlbaemPacket", "AlbaemPacketType", "AlbaemStart", "_AlbaemBase"]
