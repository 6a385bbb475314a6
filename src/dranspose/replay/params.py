"""Parameters for replay: parameter files (detected by content) and the live parameter set.

A parameter file is a JSON list of ``{"name", "data"}`` (data a string), else a CBOR list of
``{"name", "data": bytes}``, else a pickled list of parameters (``WorkParameter`` objects or
dicts) read through the restricted unpickler: a crafted file cannot run code (COMPAT §5).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, Iterable, Mapping

import cbor2

from dranspose.core.parameters import build_parameters, merge_descriptions, parameters_hash
from dranspose.dumps.dumpfile import DRANSPOSE_PICKLE_ALLOW
from dranspose.errors import ConfigError
from dranspose.parameters import ParameterBase
from dranspose.protocol import HashDigest, ParameterName, WorkParameter
from dranspose.safe_pickle import restricted_loads

log = logging.getLogger(__name__)


def _entries_to_raw(entries: Any, kind: str) -> dict[str, bytes]:
    if not isinstance(entries, (list, tuple)):
        raise ConfigError(f"{kind} parameter file does not hold a list")
    raw: dict[str, bytes] = {}
    for entry in entries:
        if isinstance(entry, WorkParameter):
            name, data = entry.name, entry.data
        elif isinstance(entry, Mapping) and "name" in entry and "data" in entry:
            name, data = entry["name"], entry["data"]
        else:
            name, data = getattr(entry, "name", None), getattr(entry, "data", None)  # type: ignore[assignment]
            if name is None or data is None:
                raise ConfigError(f"{kind} parameter file entry {entry!r:.80} has no name and data")
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(name, str) or not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"{kind} parameter file entry {name!r:.40}: data must be text or bytes")
        raw[name] = bytes(data)
    return raw


def parse_parameter_bytes(content: bytes, source: str = "<bytes>") -> dict[str, bytes]:
    """Raw parameter values from a parameter file's content (JSON, CBOR or pickle)."""
    stripped = content.lstrip()
    if stripped[:1] in (b"[", b"{"):
        try:
            entries = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
        else:
            return _entries_to_raw(entries, "JSON")
    if content[:1] == b"\x80":  # pickle protocol 2+; a CBOR list never starts with an empty array
        return _parse_pickle(content, source)
    try:
        entries = cbor2.loads(content)
    except Exception as exc:
        try:
            return _parse_pickle(content, source)
        except ConfigError:
            raise ConfigError(f"parameter file {source} is neither JSON, CBOR nor a pickle ({exc})") from None
    return _entries_to_raw(entries, "CBOR")


def _parse_pickle(content: bytes, source: str) -> dict[str, bytes]:
    try:
        entries = restricted_loads(content, DRANSPOSE_PICKLE_ALLOW)
    except Exception as exc:
        raise ConfigError(f"parameter file {source}: cannot read as pickle: {exc}") from exc
    return _entries_to_raw(entries, "pickled")


def read_parameter_file(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """Raw parameter values from a parameter file, detected by content, not by extension."""
    with open(path, "rb") as f:
        content = f.read()
    return parse_parameter_bytes(content, os.fspath(path))


class ParameterSet:
    """The one parameter namespace of a replay: descriptions, raw values, the live dict.

    ``parameters`` is the dict handed to user code; :meth:`set` updates it in place (under a
    lock) so workers and the reducer see new values on their next call.
    """

    def __init__(self, descriptions: Iterable[Iterable[ParameterBase]], raw: Mapping[str, bytes] | None = None) -> None:
        self.descriptions = merge_descriptions(*descriptions)
        self._raw: dict[str, bytes] = dict(raw or {})
        self._lock = threading.Lock()
        self.parameters: dict[ParameterName, WorkParameter] = build_parameters(self.descriptions, self._raw)
        self.hash: HashDigest = parameters_hash(self._raw_all())

    def _raw_all(self) -> dict[str, bytes]:
        return {name: p.data for name, p in self.parameters.items()}

    def set(self, name: str, data: bytes) -> HashDigest:
        """Set one raw value (typed through its description, if any); returns the new hash."""
        with self._lock:
            self._raw[name] = bytes(data)
            fresh = build_parameters(self.descriptions, {name: self._raw[name]})
            self.parameters[ParameterName(name)] = fresh[ParameterName(name)]
            self.hash = parameters_hash(self._raw_all())
            return self.hash

    def get(self, name: str) -> bytes | None:
        p = self.parameters.get(ParameterName(name))
        return None if p is None else p.data

    def describe(self) -> list[dict[str, Any]]:
        """The parameter descriptions as JSON-able dicts (``GET /api/v1/parameters``)."""
        return [d.model_dump(mode="json") for d in self.descriptions.values()]
