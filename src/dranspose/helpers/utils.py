"""Small helpers of the old ``dranspose.helpers.utils`` that analyses import."""

from __future__ import annotations

from typing import Mapping

from dranspose.core.parameters import parameters_hash as _raw_hash
from dranspose.hooks import load_class
from dranspose.protocol import HashDigest, ParameterName, WorkParameter


def import_class(path: str) -> type:
    """Import ``"package.module:Class"`` (the current directory is importable).

    Raises :class:`dranspose.errors.ConfigError` (a ``ValueError``) naming what is missing.
    """
    return load_class(path)


def parameters_hash(parameters: Mapping[ParameterName, WorkParameter]) -> HashDigest:
    """The digest of a ``parameters`` dict, the same one ``state.parameters_hash`` and
    ``ResultData.parameters_hash`` carry for these values."""
    return _raw_hash({name: p.data for name, p in parameters.items()})
