"""Worker -> reducer result messages: a small JSON header plus a protocol-5 pickle whose large
buffers (numpy arrays) travel as separate frames, sent and received without copies.

Message: ``[header_json, pickle, *buffers]``, header
``{"event_number", "worker", "parameters_hash", "mapping", "buffers": n}``.
The reducer unpickles with an allow-list (:mod:`dranspose.safe_pickle`): a stray connection
cannot run code. Received arrays share memory with the ZeroMQ frames (writable, owned by the
result object).
"""

from __future__ import annotations

import functools
import importlib
import logging
import pickle
import sys
from collections.abc import Collection, Sequence
from typing import Any

import zmq

from dranspose.errors import ProtocolError, UnpicklingRefused
from dranspose.event import ResultData, construct
from dranspose.protocol import EventNumber, HashDigest, WorkerName
from dranspose.safe_pickle import PLAIN_DATA, AllowList, compile_allow, restricted_loads
from dranspose.transport.jsonio import dumps_compact, loads_json

log = logging.getLogger(__name__)

# Buffers smaller than this are kept inside the pickle (a separate frame costs more).
OUT_OF_BAND_MIN = 4096

# dranspose's own data classes admitted by name (the classes these modules define).
DRANSPOSE_DATA_MODULES: tuple[str, ...] = (
    "dranspose.event",
    "dranspose.protocol",
    "dranspose.parameters",
    *(f"dranspose.data.{m}" for m in (
        "albaem", "contrast", "eiger_legacy", "lecroy", "pcap", "positioncap", "sardana", "stream1", "xspress3"
    )),
)  # fmt: skip
BASE_ALLOW: frozenset[str] = PLAIN_DATA


def _module_of(path: str) -> str:
    module, sep, _attr = path.partition(":")
    return module if sep else path.rpartition(".")[0]


def classes_of(module_name: str) -> set[str]:
    """``module:Name`` of every public class ``module_name`` itself defines (imported ones are
    not included: a payload importing ``subprocess.Popen`` does not admit it)."""
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except Exception as exc:  # not importable here: nothing of it can be rebuilt anyway
        log.warning("result allow-list: cannot import %s (%s); its classes are not admitted", module_name, exc)
        return set()
    return {
        f"{module_name}:{name}"
        for name, obj in vars(module).items()
        if isinstance(obj, type) and obj.__module__ == module_name and not name.startswith("_")
    }


def _declared(module_name: str, attr: str) -> set[str]:
    """The payload's own list of result classes: ``result_classes`` on the worker/reducer
    class (classes or ``"module:Name"`` strings)."""
    module = sys.modules.get(module_name)
    cls = getattr(module, attr, None) if module is not None else None
    out: set[str] = set()
    for item in getattr(cls, "result_classes", None) or ():
        out.add(item if isinstance(item, str) else f"{item.__module__}:{item.__qualname__}")
    return out


def result_allow_list(
    class_paths: Sequence[str | None], extra: Collection[str] = (), advertised: Sequence[str | None] = ()
) -> AllowList:
    """The exact ``module:Name`` pairs a result may name (one list for the reducer and replay):

    * :data:`PLAIN_DATA` (numpy arrays and scalars, datetimes, plain containers, by name),
    * the classes of dranspose's data modules (:data:`DRANSPOSE_DATA_MODULES`),
    * the classes the modules of ``class_paths`` (the locally configured worker/reducer classes)
      define, plus their declared ``result_classes``,
    * ``extra`` (setting ``pickle_allow``): ``module:Name``, or a module = the classes it defines,
    * ``advertised`` worker class paths read from Redis, only when in the same top-level
      package as a configured class (never dranspose's own: a peer cannot widen the list).
    """
    entries: set[str] = set(PLAIN_DATA)
    for module in DRANSPOSE_DATA_MODULES:
        entries |= classes_of(module)
    trusted_top: set[str] = set()
    modules: set[str] = set()
    for path in class_paths:
        if not path:
            continue
        module = _module_of(path)
        modules.add(module)
        entries |= _declared(module, path.rpartition(":")[2] if ":" in path else path.rpartition(".")[2])
        top = module.split(".")[0]
        if top != "dranspose":
            trusted_top.add(top)
    for path in advertised:
        if path and (_module_of(path) in modules or _module_of(path).split(".")[0] in trusted_top):
            modules.add(_module_of(path))
    for module in modules:
        entries |= classes_of(module)
    for entry in extra:
        entries |= {entry} if ":" in entry else classes_of(entry)
    return compile_allow(entries)  # parsed once, not per result


@functools.lru_cache(maxsize=64)
def _header_middle(worker: str, parameters_hash: str | None, mapping: str | None) -> bytes:
    """The JSON members of a result header between its event number and its buffer count:
    what :func:`dumps_compact` writes for them inside the whole header, written once per
    (worker, parameters hash, mapping) instead of once per result."""
    return dumps_compact({"worker": worker, "parameters_hash": parameters_hash, "mapping": mapping})[1:-1]


def encode(result: ResultData, mapping: str | None) -> list[Any]:
    """Frames for ``result``; arrays >= OUT_OF_BAND_MIN bytes become their own frames. The
    header is the compact JSON of ``{"event_number", "worker", "parameters_hash", "mapping",
    "buffers"}`` in that order, the same bytes whichever way it is written."""
    buffers: list[pickle.PickleBuffer] = []

    def keep(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < OUT_OF_BAND_MIN:
            return True  # serialise in-band
        buffers.append(buf)
        return False

    body = pickle.dumps(result.payload, protocol=5, buffer_callback=keep)
    event, worker, phash = result.event_number, result.worker, result.parameters_hash
    if type(event) is int and type(worker) is str and (phash is None or type(phash) is str) and (mapping is None or type(mapping) is str):
        header = b'{"event_number":%d,%s,"buffers":%d}' % (event, _header_middle(worker, phash, mapping), len(buffers))
    else:  # anything else (an int subclass, a numpy integer): written whole, as it always was
        header = dumps_compact(
            {"event_number": event, "worker": worker, "parameters_hash": phash, "mapping": mapping, "buffers": len(buffers)}
        )
    if not buffers:
        return [header, body]
    return [header, body, *[b.raw() for b in buffers]]


def frames_declared(header: Any) -> int:
    """Frames that follow a result header (the pickle and its buffers); raises on a bad one."""
    if not isinstance(header, dict):
        raise TypeError("result header is not an object")
    buffers = header["buffers"]
    if isinstance(buffers, bool) or not isinstance(buffers, int) or buffers < 0:
        raise ValueError(f"buffers is {buffers!r}")
    return 1 + buffers


MAX_HEADER_BYTES = 64 * 1024


def _header(raw: bytes) -> dict[str, Any]:
    """The result header, every field checked by type (ProtocolError otherwise)."""
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"result header of {len(raw)} bytes (limit {MAX_HEADER_BYTES})")
    try:
        header = loads_json(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"bad result header {raw[:80]!r}: {exc}") from None
    return check_header(header)


_FIELDS = (
    ("event_number", (int,), True),
    ("buffers", (int,), True),
    ("worker", (str,), True),
    ("parameters_hash", (str, type(None)), False),
    ("mapping", (str, type(None)), False),
)


def check_header(header: Any) -> dict[str, Any]:
    """``header`` (parsed JSON) if every field has its type; ProtocolError otherwise."""
    if type(header) is dict:  # the common header, by exact types (the loop below decides the rest)
        event, buffers, worker = header.get("event_number"), header.get("buffers"), header.get("worker")
        phash, mapping = header.get("parameters_hash"), header.get("mapping")
        if (
            type(event) is int and event >= 0 and type(buffers) is int and buffers >= 0 and type(worker) is str
            and (phash is None or type(phash) is str) and (mapping is None or type(mapping) is str)
        ):
            return header
    return _check_header_fields(header)


def _check_header_fields(header: Any) -> dict[str, Any]:
    if not isinstance(header, dict):
        raise ProtocolError(f"bad result header {repr(header)[:80]}: not an object")
    for key, types, required in _FIELDS:
        if key not in header:
            if required:
                raise ProtocolError(f"bad result header {repr(header)[:80]}: no {key!r}")
            continue
        value = header[key]
        if isinstance(value, bool) or not isinstance(value, types) or (isinstance(value, int) and value < 0):
            raise ProtocolError(f"bad result header {repr(header)[:80]}: {key!r} is {value!r}")
    return header


def decode_header(parts: Sequence[Any], parsed: Any = None) -> dict[str, Any]:
    """The checked header of a result message (ProtocolError when framing or header are bad);
    ``parsed``: the header already parsed from a batch (``parts[0]`` is then not read)."""
    if len(parts) < 2:
        raise ProtocolError(f"result message has {len(parts)} frames, expected at least 2")
    if parsed is not None:
        header = check_header(parsed)
    else:
        raw = parts[0].bytes if hasattr(parts[0], "bytes") else bytes(parts[0])
        header = _header(raw)
    nbuf = header["buffers"]
    if nbuf != len(parts) - 2:
        raise ProtocolError(f"result header declares {nbuf} buffers, message has {len(parts) - 2}")
    return header


def _view(part: Any) -> Any:
    """A received frame's bytes without a copy: ``memoryview(frame)`` for a ``zmq.Frame`` (its
    ``.buffer`` makes a weak reference on every call), anything else as it is."""
    return memoryview(part) if isinstance(part, zmq.Frame) else part  # type: ignore[arg-type]


def decode(parts: Sequence[Any], allow: Collection[str], header: dict[str, Any] | None = None) -> tuple[ResultData, str | None]:
    """Rebuild a ResultData; raises ProtocolError (bad framing, bad header, corrupt pickle:
    whatever the unpickler raised) or UnpicklingRefused (a global not on the allow-list).
    ``header`` is the one :func:`decode_header` returned, if already read."""
    if header is None:
        header = decode_header(parts)
    buffers = [_view(p) for p in parts[2:]]
    body = _view(parts[1])
    try:
        payload = restricted_loads(body, allow, buffers=buffers)
    except UnpicklingRefused as exc:
        raise UnpicklingRefused(f"result of event {header['event_number']} from {header['worker']!r}: {exc}") from None
    except Exception as exc:  # any failure of a hostile pickle (ValueError of datetime.date(0, 0, 0), ...)
        raise ProtocolError(f"result of event {header['event_number']}: corrupt pickle: {type(exc).__name__}: {exc}") from None
    result = construct(
        ResultData,
        event_number=EventNumber(header["event_number"]),
        worker=WorkerName(header["worker"]),
        parameters_hash=HashDigest(header["parameters_hash"]) if header.get("parameters_hash") else None,
        payload=payload,
    )
    return result, header.get("mapping")
