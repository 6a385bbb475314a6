"""STINS packets (compat ``dranspose.data.stream1``): re-exported from :mod:`dranspose.protocols.stins`."""

from dranspose.protocols.stins import (
    Stream1,
    Stream1Data,
    Stream1End,
    Stream1Packet,
    Stream1Start,
)

__all__ = [
    "Stream1",
    "Stream1Data",
    "Stream1End",
    "Stream1Packet",
    "Stream1Start",
]
