"""Small ZeroMQ helpers: binding to configured URLs (port 0 = any free port) and advertising."""

from __future__ import annotations

import socket as _socket
from typing import Any
from urllib.parse import urlsplit

import zmq


def bind(sock: "zmq.Socket[Any]", url: str) -> str:
    """Bind ``sock`` to the port of ``url`` on all interfaces; ``:0`` or ``:*`` picks a free
    port. Returns the URL others should connect to (the host of ``url``, the bound port)."""
    parts = urlsplit(url)
    if parts.scheme != "tcp":
        sock.bind(url)
        return url
    host = parts.hostname or "localhost"
    port = parts.port if parts.port is not None else 0
    bind_host = "127.0.0.1" if host in ("localhost", "127.0.0.1") else "*"
    if port == 0 or url.endswith(":*"):
        port = sock.bind_to_random_port(f"tcp://{bind_host}")
    else:
        sock.bind(f"tcp://{bind_host}:{port}")
    return f"tcp://{host}:{port}"


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port (for HTTP servers; may race, retried by callers)."""
    with _socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
