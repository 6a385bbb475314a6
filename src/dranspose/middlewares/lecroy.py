"""Parser for LeCroy MAUI streams (compat ``dranspose.middlewares.lecroy``): re-exported from :mod:`dranspose.protocols.lecroy`."""

from dranspose.protocols.lecroy import (
    LECROY_TYPE,
    parse,
)

__all__ = [
    "LECROY_TYPE",
    "parse",
]
