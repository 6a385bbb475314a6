"""Fixtures of the protocol tests: both decoder backends and the real detector captures
(shared with the codec tests in tests/fastpath)."""

from tests.fastpath.conftest import BACKENDS, be, eiger1m, eiger_small, stream2_capture, xrd_dump

__all__ = ["BACKENDS", "be", "eiger1m", "eiger_small", "stream2_capture", "xrd_dump"]
