"""Parser for PCAP streams (compat ``dranspose.middlewares.pcap``): re-exported from :mod:`dranspose.protocols.pcap`."""

from dranspose.protocols.pcap import (
    parse,
)

__all__ = [
    "parse",
]
