"""The controller's part of a recording: with ``dump_prefix`` set, each scan also gets
``{prefix}mapping-{uuid}.json`` (the sequence as posted: ``{"parts", "sequence"}``) and
``{prefix}parameters-{uuid}.json`` — or ``.cbor`` when a value is not UTF-8 text or holds a NUL
byte — a list of ``{"name", "data"}`` that ``dranspose replay -p`` reads.

Files are created exclusively (an existing file is never overwritten or truncated).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import cbor2


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parameters_document(values: Mapping[str, bytes]) -> tuple[str, bytes]:
    """(extension, file content) of a parameter dump."""
    if all(_is_text(v) for v in values.values()):
        entries = [{"name": n, "data": v.decode("utf-8")} for n, v in values.items()]
        return "json", json.dumps(entries).encode()
    return "cbor", cbor2.dumps([{"name": n, "data": bytes(v)} for n, v in values.items()])


def _create(path: str, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def write_scan_files(prefix: str, mapping_uuid: str, sequence: Any, parameters: Mapping[str, bytes]) -> list[str]:
    """Write the mapping and parameter files of one scan; returns their paths. OSError on
    failure. ``sequence``: the document, or its JSON text as bytes (written as it is)."""
    mapping_path = f"{prefix}mapping-{mapping_uuid}.json"
    _create(mapping_path, sequence if isinstance(sequence, bytes) else json.dumps(sequence).encode())
    ext, content = parameters_document(parameters)
    params_path = f"{prefix}parameters-{mapping_uuid}.{ext}"
    _create(params_path, content)
    return [mapping_path, params_path]
