"""Parser for PandA position capture over TCP (compat ``dranspose.middlewares.positioncap``): re-exported from :mod:`dranspose.protocols.positioncap`."""

from dranspose.protocols.positioncap import (
    PositioncapParser,
)

__all__ = [
    "PositioncapParser",
]
