"""Worker -> reducer result messages: a small JSON header plus a protocol-5 pickle whose large
buffers (numpy arrays) travel as separate frames, sent and received without copies.

Message: ``[header_json, pickle, *buffers]``, header
``{"event_number", "worker", "parameters_hash", "mapping", "buffers": n}``.
The reducer unpickles with an allow-list (:mod:`dranspose.safe_pickle`): a stray connection
cannot run code. Received arrays share memory with the ZeroMQ frames (writable, owned by the
result object).
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Collection, Sequence

from dranspose.errors import ProtocolError
from dranspose.event import ResultData
from dranspose.protocol import EventNumber, HashDigest, WorkerName
from dranspose.safe_pickle import PLAIN_DATA, compile_allow, restricted_loads

# Buffers smaller than this are kept inside the pickle (a separate frame costs more).
OUT_OF_BAND_MIN = 4096

# Only data: whole packages like ``numpy`` or ``dranspose`` would expose callables that act
# (``numpy.f2py``, ``dranspose.cli.main``); the payload's own packages are trusted wholesale.
BASE_ALLOW: frozenset[str] = PLAIN_DATA | {
    "dranspose.event",
    "dranspose.protocol",
    "dranspose.parameters",
    "dranspose.data",
    "numpy.ma.core:_mareconstruct",
    "numpy.ma.core:MaskedArray",
    "numpy:bool_",
    "copyreg:_reconstructor",
    "builtins:object",
}


def result_allow_list(class_paths: Sequence[str | None], extra: Collection[str] = ()) -> Collection[str]:
    """Allow-list for results: the payload packages of the worker/reducer classes, dranspose,
    numpy arrays, plain data types, plus ``extra``. Unlike DESIGN.md's list, ``builtins`` and
    ``numpy`` are admitted by name for data types only (``builtins.eval`` would run code)."""
    packages = {p.replace(":", ".").split(".")[0] for p in class_paths if p}
    return compile_allow(set(BASE_ALLOW) | packages | set(extra))  # parsed once, not per result


def encode(result: ResultData, mapping: str | None) -> list[Any]:
    """Frames for ``result``; arrays >= OUT_OF_BAND_MIN bytes become their own frames."""
    buffers: list[pickle.PickleBuffer] = []

    def keep(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < OUT_OF_BAND_MIN:
            return True  # serialise in-band
        buffers.append(buf)
        return False

    body = pickle.dumps(result.payload, protocol=5, buffer_callback=keep)
    header = {
        "event_number": result.event_number,
        "worker": result.worker,
        "parameters_hash": result.parameters_hash,
        "mapping": mapping,
        "buffers": len(buffers),
    }
    return [json.dumps(header, separators=(",", ":")).encode(), body, *(b.raw() for b in buffers)]


def frames_declared(header: Any) -> int:
    """Frames that follow a result header (the pickle and its buffers); raises on a bad one."""
    if not isinstance(header, dict):
        raise TypeError("result header is not an object")
    return 1 + int(header["buffers"])


def decode(parts: Sequence[Any], allow: Collection[str]) -> tuple[ResultData, str | None]:
    """Rebuild a ResultData; raises ProtocolError (bad framing) or UnpicklingRefused."""
    if len(parts) < 2:
        raise ProtocolError(f"result message has {len(parts)} frames, expected at least 2")
    raw = parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
    try:
        header = json.loads(raw)
        nbuf = int(header["buffers"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"bad result header {raw[:80]!r}: {exc}") from None
    if nbuf != len(parts) - 2:
        raise ProtocolError(f"result header declares {nbuf} buffers, message has {len(parts) - 2}")
    buffers = [p.buffer if hasattr(p, "buffer") else p for p in parts[2:]]
    body = parts[1].buffer if hasattr(parts[1], "buffer") else parts[1]
    try:
        payload = restricted_loads(body, allow, buffers=buffers)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as exc:
        raise ProtocolError(f"result of event {header.get('event_number')}: corrupt pickle: {exc}") from None
    result = ResultData.model_construct(
        event_number=EventNumber(int(header["event_number"])),
        worker=WorkerName(str(header["worker"])),
        parameters_hash=HashDigest(header["parameters_hash"]) if header.get("parameters_hash") else None,
        payload=payload,
    )
    return result, header.get("mapping")
