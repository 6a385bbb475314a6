"""Compat parser for contrast streams (``dranspose.middlewares.contrast``)."""

from __future__ import annotations

from dranspose.data.contrast import ContrastPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import contrast


def parse(data: StreamData) -> ContrastPacketType:
    """Decode one ``contrast`` unit into ContrastStarted | ContrastRunning | ContrastFinished
    (``status`` ``finished`` or ``interrupted``) | ContrastHeartbeat.

    The pickle is read with a restricted unpickler (numpy arrays, OrderedDict, plain data only);
    anything else raises ProtocolError (a ValueError) and runs no code.
    """
    if data.typ != contrast.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {contrast.TYP!r}")
    return contrast.decode(data.frames)
