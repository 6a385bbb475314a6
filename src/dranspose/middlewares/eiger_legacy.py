"""Parser for Eiger SIMPLON v1 streams (compat ``dranspose.middlewares.eiger_legacy``): re-exported from :mod:`dranspose.protocols.eiger_legacy`."""

from dranspose.protocols.eiger_legacy import (
    parse,
)

__all__ = [
    "parse",
]
