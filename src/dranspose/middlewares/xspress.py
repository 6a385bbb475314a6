"""Parser for Xspress3 streams (compat ``dranspose.middlewares.xspress``): re-exported from :mod:`dranspose.protocols.xspress3`."""

from dranspose.protocols.xspress3 import (
    XspressParser,
    parse,
)

__all__ = [
    "XspressParser",
    "parse",
]
