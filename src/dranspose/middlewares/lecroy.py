"""Compat parser for LeCroy MAUI streams (``dranspose.middlewares.lecroy``)."""

from __future__ import annotations

from dranspose.data.lecroy import LECROY_TYPE, LecroyPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import lecroy


def parse(data: StreamData) -> LecroyPacketType:
    """Decode one LeCroy unit: PREPARE/STOP give LecroyPrepare/LecroyEnd, a sequence unit
    (SEQSTART, 3 frames per channel, SEQEND) gives LecroyParsed with ``meta``, ``data`` (views into
    the frames) and ``timestamps`` per channel. Raises ProtocolError (a ValueError)."""
    if data.typ != LECROY_TYPE:
        raise ProtocolError(f"stream typ {data.typ!r} is not {LECROY_TYPE!r}")
    return lecroy.decode(data.frames)
