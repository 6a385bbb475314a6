"""Runtime parameters: one namespace shared by workers and reducer (pure, no I/O).

Raw values are bytes (as set over REST or from a parameter file). Declared parameters get
their default and a typed ``.value``; undeclared ones keep ``.value = None`` and raw ``.data``.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

from dranspose.errors import ConfigError
from dranspose.parameters import ParameterBase
from dranspose.protocol import HashDigest, ParameterName, WorkParameter


def merge_descriptions(*groups: Iterable[ParameterBase]) -> dict[ParameterName, ParameterBase]:
    """Merge parameter descriptions of several classes; the same name twice must agree on type."""
    merged: dict[ParameterName, ParameterBase] = {}
    for group in groups:
        for desc in group:
            previous = merged.get(desc.name)
            if previous is not None and previous.dtype != desc.dtype:
                raise ConfigError(
                    f"parameter {desc.name!r} declared twice with different types: {previous.dtype} and {desc.dtype}"
                )
            merged.setdefault(desc.name, desc)
    return merged


def parameters_hash(raw: Mapping[str, bytes]) -> HashDigest:
    """A stable digest of all raw parameter values (names sorted)."""
    h = hashlib.sha256()
    for name in sorted(raw):
        h.update(name.encode())
        h.update(len(raw[name]).to_bytes(8, "little"))
        h.update(raw[name])
    return HashDigest(h.hexdigest())


def build_parameters(
    descriptions: Mapping[ParameterName, ParameterBase], raw: Mapping[str, bytes]
) -> dict[ParameterName, WorkParameter]:
    """The ``parameters`` dict user code sees: defaults for declared names, typed values."""
    out: dict[ParameterName, WorkParameter] = {}
    for name, desc in descriptions.items():
        data = raw[name] if name in raw else desc.to_bytes(desc.default)
        out[name] = WorkParameter(name=name, data=data, value=desc.from_bytes(data))
    for raw_name, data in raw.items():
        if raw_name not in descriptions:
            out[ParameterName(raw_name)] = WorkParameter(name=ParameterName(raw_name), data=data, value=None)
    return out
