"""Typed stubs for ``_fastpath.picklewalk`` (see the module docstring for the contract)."""

from typing import Any

from dranspose.backend import BufferLike as Buffer

def pickle_memo_end(buf: Buffer, kinds: Any, stores: Any) -> int: ...
