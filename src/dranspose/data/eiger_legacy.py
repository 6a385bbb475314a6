"""Eiger SIMPLON v1 packets (compat ``dranspose.data.eiger_legacy``): re-exported from :mod:`dranspose.protocols.eiger_legacy`."""

from dranspose.protocols.eiger_legacy import (
    EigerLegacy,
    EigerLegacyEnd,
    EigerLegacyHeader,
    EigerLegacyImage,
    EigerLegacyPacket,
    TYP,
)

__all__ = [
    "EigerLegacy",
    "EigerLegacyEnd",
    "EigerLegacyHeader",
    "EigerLegacyImage",
    "EigerLegacyPacket",
    "TYP",
]
