"""contrast scan recorder stream (PROTOCOLS §9, typ ``contrast``).

Wire: a PUB socket sends single-part pickled dicts with a ``status`` key: ``heartbeat``,
``started`` (scan header), ``running`` (one scan point), ``finished`` or ``interrupted``.
Pickles are read with the restricted §13 unpickler (:func:`load_wire_pickle`); anything outside
that subset is a ProtocolError.

:class:`ContrastCutter`: started -> START, running -> DATA, finished *and interrupted* -> END
(gap §15.6), heartbeats -> nothing.
"""

from __future__ import annotations

import pickle
from typing import Any, Mapping, Sequence

from dranspose.data.contrast import (
    ContrastFinished,
    ContrastHeartbeat,
    ContrastPacketType,
    ContrastRunning,
    ContrastStarted,
)
from dranspose.errors import ProtocolError
from dranspose.protocols._pickles import load_wire_pickle
from dranspose.protocols.base import Frame, Kind, Unit

TYP = "contrast"
SOCKET = "SUB"

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


class ContrastCutter:
    """Classifies contrast messages by status; heartbeats produce no unit. Frames forwarded unchanged.

    Cost: every message is unpickled once here (they are small: about 2.4 kB).
    """

    typ = TYP
    has_start = True

    def reset(self) -> None:
        pass

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            raise ProtocolError(f"contrast message has {len(parts)} parts, expected 1")
        status = load(parts[0])["status"]
        kind = _KINDS.get(status)
        if kind is None:  # heartbeat
            return []
        return [Unit(kind, [parts[0]], meta={"status": status})]


CUTTER = ContrastCutter


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
