"""Compat parser for Eiger SIMPLON v1 streams (``dranspose.middlewares.eiger_legacy``).

``parse`` keeps the old result shape (``info``/``appendix`` on headers; ``data`` with the raw
``buffer`` bytes and ``config`` on images, nothing decompressed) but accepts every part count
seen in real streams: headers of 1, 2, 3, 8 or 9 parts and images of 4 or 5 parts.
Use ``dranspose.protocols.eiger_legacy.decode_image`` for decompressed pixels.
Errors are ProtocolError (a ValueError).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from dranspose.codecs._common import frame_bytes
from dranspose.data.eiger_legacy import EigerLegacyHeader, EigerLegacyImage, EigerLegacyPacket
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import eiger_legacy as proto


def _json(frame: Any, what: str) -> Any:
    try:
        return json.loads(frame_bytes(frame))
    except ValueError as exc:
        raise ProtocolError(f"Eiger {what} is not JSON: {exc}") from None


def parse(data: StreamData) -> Any:
    """StreamData (typ ``EIGER_LEGACY``) -> EigerLegacyHeader | EigerLegacyImage | EigerLegacyEnd."""
    if data.typ != proto.TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {proto.TYP!r}")
    frames = data.frames
    if not frames:
        raise ProtocolError("Eiger stream data without frames")
    try:
        packet = EigerLegacyPacket.validate_python(_json(frames[0], "part 0"))
    except ValidationError as exc:
        raise ProtocolError(f"invalid Eiger packet: {exc}") from None
    n = len(frames)
    if isinstance(packet, EigerLegacyHeader):
        if n not in proto.HEADER_PARTS:
            raise ProtocolError(f"Eiger header has {n} parts, expected one of {proto.HEADER_PARTS}")
        detail = getattr(packet, "header_detail", None)
        has_info = n >= 8 or (n >= 2 and detail in ("basic", "all"))
        if has_info:
            setattr(packet, "info", _json(frames[1], "header config"))
        if n in (9, 3) or (n == 2 and not has_info):
            try:
                setattr(packet, "appendix", _json(frames[-1], "header appendix"))
            except ProtocolError:
                setattr(packet, "appendix", frame_bytes(frames[-1]))
    elif isinstance(packet, EigerLegacyImage):
        if n not in proto.IMAGE_PARTS:
            raise ProtocolError(f"Eiger image has {n} parts, expected 4 or 5")
        info = _json(frames[1], "image part 1")
        if not isinstance(info, dict):
            raise ProtocolError("Eiger image part 1 is not a JSON object")
        info["buffer"] = frame_bytes(frames[2])
        setattr(packet, "data", info)
        setattr(packet, "config", _json(frames[3], "image config"))
        if n == 5:
            try:
                setattr(packet, "appendix", _json(frames[4], "image appendix"))
            except ProtocolError:
                setattr(packet, "appendix", frame_bytes(frames[4]))
    return packet
