"""Parser for Sardana streams (compat ``dranspose.middlewares.sardana``): re-exported from :mod:`dranspose.protocols.sardana`."""

from dranspose.protocols.sardana import (
    parse,
)

__all__ = [
    "parse",
]
