"""Eiger SIMPLON v1 packets (compat ``dranspose.data.eiger_legacy``): mutable pydantic models,
extra keys allowed. ``EigerLegacyPacket`` is a pydantic ``TypeAdapter`` over the three.

After ``middlewares.eiger_legacy.parse``: a header has ``info`` (detector config, when sent)
and ``appendix`` (when sent); an image has ``data`` (part 1 JSON plus ``buffer``, the raw
pixel bytes) and ``config`` (part 3 JSON).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.event import StreamData

TYP = "EIGER_LEGACY"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class EigerLegacy(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


class EigerLegacyHeader(EigerLegacy):
    htype: Literal["dheader-1.0"] = "dheader-1.0"

    def to_stream_data(self) -> StreamData:
        """Part 0, then ``info`` (config) and ``appendix`` when set."""
        head = self.model_dump(exclude={"info", "appendix"})
        frames = [_dumps(head)]
        info = getattr(self, "info", None)
        if info is not None:
            frames.append(_dumps(info))
        appendix = getattr(self, "appendix", None)
        if appendix is not None:
            frames.append(appendix if isinstance(appendix, bytes) else _dumps(appendix))
        return StreamData(typ=TYP, frames=frames)


class EigerLegacyImage(EigerLegacy):
    htype: Literal["dimage-1.0"] = "dimage-1.0"
    frame: int

    def to_stream_data(self) -> StreamData:
        """The 4-part image: part 0 (hash = MD5 of part 1), ``data`` without ``buffer``, the
        buffer, ``config`` (5 parts with an ``appendix``)."""
        data = dict(getattr(self, "data", None) or {})
        buffer = data.pop("buffer", b"")
        part1 = _dumps(data)
        head = self.model_dump(exclude={"data", "config", "appendix"})
        head["hash"] = hashlib.md5(part1).hexdigest()
        config = getattr(self, "config", None) or {"htype": "dconfig-1.0"}
        frames = [_dumps(head), part1, bytes(buffer), _dumps(config)]
        appendix = getattr(self, "appendix", None)
        if appendix is not None:
            frames.append(appendix if isinstance(appendix, bytes) else _dumps(appendix))
        return StreamData(typ=TYP, frames=frames)


class EigerLegacyEnd(EigerLegacy):
    htype: Literal["dseries_end-1.0"] = "dseries_end-1.0"

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[_dumps(self.model_dump())])


EigerLegacyPacket: TypeAdapter[Any] = TypeAdapter(
    Union[EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd]
)
"""Validates any Eiger part-0 JSON into one of the three classes."""
