"""contrast scan recorder stream (PROTOCOLS §9, typ ``contrast``).

Wire: a PUB socket sends single-part pickled dicts with a ``status`` key: ``heartbeat``,
``started`` (scan header), ``running`` (one scan point), ``finished`` or ``interrupted``.
Pickles are read with the restricted §13 unpickler (:func:`load_wire_pickle`); anything outside
that subset is a ProtocolError.

:class:`ContrastCutter`: started -> START, running -> DATA, finished *and interrupted* -> END
(gap §15.6), heartbeats -> nothing. The models are re-exported by ``dranspose.data.contrast``
and :func:`parse` by ``dranspose.middlewares.contrast``.
"""

from __future__ import annotations

import pickle
from typing import Any, Literal, Mapping, Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._pickles import load_wire_pickle
from dranspose.protocols.base import Frame, Kind, SingleMessageCutter, Unit, compat_module

TYP = "contrast"
SOCKET = "SUB"


# --- models ------------------------------------------------------------------------------------


class ContrastBase(BaseModel):
    """A contrast packet: mutable, extra keys allowed. A running point's values (motor
    positions, detector values, nested dicts of numpy arrays, file links) are extra attributes:
    ``getattr(pkt, "pseudo")`` or ``pkt.model_extra``."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def to_stream_data(self) -> StreamData:
        """One frame: the packet as contrast pickles it (a dict, protocol 2; heartbeats 4)."""
        return StreamData(typ=TYP, frames=encode(self.model_dump()))


_ContrastBase = ContrastBase  # the name before it was public


class ContrastStarted(ContrastBase):
    status: Literal["started"] = "started"
    path: str = ""
    scannr: int = 0
    description: str = ""


class ContrastRunning(ContrastBase):
    status: Literal["running"] = "running"
    dt: float | None = None


class ContrastFinished(ContrastBase):
    """Scan footer. ``status`` is ``finished`` or ``interrupted`` (both end the run)."""

    status: Literal["finished", "interrupted"] = "finished"
    path: str = ""
    scannr: int = 0
    description: str = ""

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"


class ContrastHeartbeat(ContrastBase):
    status: Literal["heartbeat"] = "heartbeat"


ContrastPacketType = Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat]
ContrastPacket: TypeAdapter[ContrastPacketType] = TypeAdapter(ContrastPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module(
    "dranspose.data.contrast", ContrastBase, ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat
)


# --- decoding ----------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {
    "started": ContrastStarted,
    "running": ContrastRunning,
    "finished": ContrastFinished,
    "interrupted": ContrastFinished,
    "heartbeat": ContrastHeartbeat,
}
_KINDS = {"started": Kind.START, "running": Kind.DATA, "finished": Kind.END, "interrupted": Kind.END}


def load(frame: Frame) -> dict[str, Any]:
    """Unpickle one contrast message into a dict with string keys and a ``status``."""
    obj = load_wire_pickle(frame, "contrast pickle")
    if not isinstance(obj, dict):
        raise ProtocolError(f"contrast message is a {type(obj).__name__}, expected a dict")
    if not all(isinstance(k, str) for k in obj):
        raise ProtocolError("contrast message has non-string keys")
    status = obj.get("status")
    if not isinstance(status, str) or status not in _MODELS:
        raise ProtocolError(f"contrast status {status!r:.40} unknown")
    return obj


def decode(frames: Sequence[Frame]) -> ContrastPacketType:
    """Decode one unit (1 frame). Raises ProtocolError."""
    if len(frames) != 1:
        raise ProtocolError(f"contrast unit has {len(frames)} frames, expected 1")
    obj = load(frames[0])
    try:
        return _MODELS[obj["status"]].model_validate(dict(obj))  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ProtocolError(f"contrast {obj['status']} packet invalid: {exc}") from exc
    except TypeError as exc:
        raise ProtocolError(f"contrast {obj['status']} packet invalid: {exc}") from exc


def parse(data: StreamData) -> ContrastPacketType:
    """Decode one ``contrast`` stream unit into ContrastStarted | ContrastRunning |
    ContrastFinished (``status`` ``finished`` or ``interrupted``) | ContrastHeartbeat.

    The pickle is read with the restricted wire unpickler (numpy arrays, OrderedDict, plain data
    only); anything else raises ProtocolError (a ValueError) and runs no code.
    """
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    return decode(data.frames)


# --- stream cutting ----------------------------------------------------------------------------


class ContrastCutter(SingleMessageCutter):
    """Classifies contrast messages by status; heartbeats produce no unit. Frames forwarded unchanged.

    Cost: every message is unpickled once here (they are small: about 2.4 kB).
    """

    typ = TYP

    def units(self, frame: Frame) -> list[Unit]:
        status = load(frame)["status"]
        kind = _KINDS.get(status)
        if kind is None:  # heartbeat
            return []
        return [Unit(kind, [frame], meta={"status": status})]


CUTTER = ContrastCutter


# --- synthetic encoding ------------------------------------------------------------------------

def encode(packet: Mapping[str, Any], protocol: int | None = None) -> list[bytes]:
    """One message: the dict pickled as contrast does (protocol 2; heartbeats protocol 4)."""
    if protocol is None:
        protocol = 4 if packet.get("status") == "heartbeat" else 2
    return [pickle.dumps(dict(packet), protocol=protocol)]


def encode_started(
    scannr: int, path: str = "", description: str = "", snapshot: Mapping[str, float] | None = None
) -> list[bytes]:
    snap = dict(snapshot or {})
    return encode({"scannr": scannr, "status": "started", "path": path, "snapshot": snap, "description": description})


def encode_running(values: Mapping[str, Any], dt: float = 0.0) -> list[bytes]:
    return encode({**values, "dt": dt, "status": "running"})


def encode_finished(scannr: int, path: str = "", description: str = "", interrupted: bool = False) -> list[bytes]:
    status = "interrupted" if interrupted else "finished"
    return encode({"scannr": scannr, "status": status, "path": path, "snapshot": {}, "description": description})


def encode_heartbeat() -> list[bytes]:
    return encode({"status": "heartbeat"})
