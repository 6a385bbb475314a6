"""Parser for AlbaEM streams (``dranspose.middlewares.albaem``): re-exported from
:mod:`dranspose.protocols.albaem` (the old dranspose had none)."""

from dranspose.protocols.albaem import parse

__all__ = ["parse"]
