"""What a bound component advertises: never a wildcard address. (Binds here stay on loopback;
wildcard and named binds run in tests/deploy's network-namespace hosts.)"""

from __future__ import annotations

import socket

import pytest
import zmq

from dranspose.transport.sockets import _ephemeral_low, advertise_host, bind, free_tcp_port, http_url


@pytest.mark.parametrize(
    ("bind_host", "advertise", "host"),
    [
        ("0.0.0.0", None, socket.gethostname()),
        ("*", None, socket.gethostname()),
        ("", None, socket.gethostname()),
        ("0.0.0.0", "det-ingester.example", "det-ingester.example"),
        ("ns-reducer", None, "ns-reducer"),
        ("ns-reducer", "other", "other"),
        ("127.0.0.1", "ignored-for-loopback", "127.0.0.1"),
    ],
)
def test_advertised_host(bind_host: str, advertise: str | None, host: str) -> None:
    assert advertise_host(bind_host, advertise) == host


@pytest.mark.parametrize(
    ("url", "advertise", "host"),
    [
        ("tcp://127.0.0.1:0", "ignored-for-loopback", "127.0.0.1"),
        ("tcp://127.0.0.1:*", None, "127.0.0.1"),
        ("tcp://localhost:0", None, "localhost"),
    ],
)
def test_bind_advertises_a_reachable_host(url: str, advertise: str | None, host: str) -> None:
    sock = zmq.Context.instance().socket(zmq.PULL)
    try:
        advertised = bind(sock, url, advertise)
        endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    finally:
        sock.close(0)
    assert advertised.startswith(f"tcp://{host}:") and "0.0.0.0" not in advertised and "*" not in advertised
    assert advertised.rsplit(":", 1)[1] == endpoint.rsplit(":", 1)[1]  # the port actually bound
    if host in ("127.0.0.1", "localhost"):
        assert endpoint.startswith("tcp://127.0.0.1:")  # loopback binds stay on loopback


def test_http_url_of_a_wildcard_bind() -> None:
    assert http_url("0.0.0.0", 5000, None, "ns-reducer") == "http://ns-reducer:5000"  # the service name
    assert http_url("0.0.0.0", 5000, "lb.example", "ns-reducer") == "http://lb.example:5000"
    assert http_url("0.0.0.0", 5000, None, "0.0.0.0") == f"http://{socket.gethostname()}:5000"
    assert http_url("127.0.0.1", 5001) == "http://127.0.0.1:5001"
    assert advertise_host("::", None) == socket.gethostname()


def test_free_ports_stay_out_of_the_ephemeral_range() -> None:
    """A picked port must not be one an outgoing connection can take before the server binds
    it (CI once lost a reducer to ``Address already in use`` on a port from that range)."""
    low = _ephemeral_low()
    ports = [free_tcp_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= p < low for p in ports)
    # each is bindable when handed out
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_tcp_port()))
