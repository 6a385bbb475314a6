"""Fixtures shared by the security tests."""

from __future__ import annotations

from typing import Iterator

import pytest
import zmq


@pytest.fixture
def upstream() -> Iterator[tuple[zmq.Socket, str]]:
    """A detector stand-in: a bound PUSH socket and the URL an ingester connects to."""
    sock = zmq.Context.instance().socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(linger=0)
