"""Compat parser for STINS streams (``dranspose.middlewares.stream1``).

``parse`` keeps the old behaviour: part 0 is validated; an uncompressed image gets a
read-only zero-copy ``data`` view of its pixels; a compressed image gets **no** ``data``
(decompress ``frames[1]`` yourself, or use :func:`parse_decompressed` / 
``dranspose.protocols.stins.decode_image``). Errors are ProtocolError (a ValueError).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import ValidationError

from dranspose.codecs._common import frame_bytes
from dranspose.data.stream1 import Stream1Data, Stream1Packet
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import stins


def _packet(data: StreamData) -> Any:
    if data.typ != stins.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {stins.TYP!r}")
    if not data.frames:
        raise ProtocolError("STINS stream data without frames")
    try:
        return Stream1Packet.validate_python(json.loads(frame_bytes(data.frames[0])))
    except (ValueError, ValidationError) as exc:
        raise ProtocolError(f"invalid STINS packet: {exc}") from None


def parse(data: StreamData) -> Any:
    """StreamData (typ ``STINS``) -> Stream1Start | Stream1Data | Stream1End."""
    packet = _packet(data)
    if isinstance(packet, Stream1Data) and packet.compression == "none":
        if len(data.frames) < 2:
            raise ProtocolError("STINS image without a data frame")
        setattr(packet, "data", stins.decode_image(data.frames))
    return packet


def parse_decompressed(data: StreamData, *, out: np.ndarray | None = None, nthreads: int | None = None) -> Any:
    """Like :func:`parse`, but compressed images (bslz4, lz4) get a decompressed ``data``."""
    packet = _packet(data)
    if isinstance(packet, Stream1Data):
        setattr(packet, "data", stins.decode_image(data.frames, out=out, nthreads=nthreads))
    return packet
