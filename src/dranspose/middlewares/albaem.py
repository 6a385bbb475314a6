"""Parser for AlbaEM streams (``dranspose.middlewares.albaem``; the old dranspose had none)."""

from __future__ import annotations

from dranspose.data.albaem import AlbaemPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import albaem


def parse(data: StreamData) -> AlbaemPacketType:
    """Decode one ``albaem`` unit into AlbaemStart | AlbaemData | AlbaemEnd; ``channel1``..4 are
    filled from either key naming. Raises ProtocolError (a ValueError)."""
    if data.typ != albaem.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {albaem.TYP!r}")
    return albaem.decode(data.frames)
