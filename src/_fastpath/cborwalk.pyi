"""Typed stubs for ``_fastpath.cborwalk`` (see the module docstring for the contract)."""

from dranspose.backend import BufferLike as Buffer
from typing import Any

def cbor_decode(buf: Buffer) -> Any: ...
