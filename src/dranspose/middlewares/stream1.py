"""Parser for STINS streams (compat ``dranspose.middlewares.stream1``): re-exported from :mod:`dranspose.protocols.stins`."""

from dranspose.protocols.stins import (
    parse,
    parse_decompressed,
)

__all__ = [
    "parse",
    "parse_decompressed",
]
