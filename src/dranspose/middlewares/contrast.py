"""Parser for contrast streams (compat ``dranspose.middlewares.contrast``): re-exported from :mod:`dranspose.protocols.contrast`."""

from dranspose.protocols.contrast import (
    parse,
)

__all__ = [
    "parse",
]
