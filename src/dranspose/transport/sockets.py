"""Small ZeroMQ helpers: binding to configured URLs (port 0 = any free port) and advertising.

The advertised address is what peers read from Redis to connect: never ``0.0.0.0``. A bind to
a wildcard host (``0.0.0.0``, ``*``, ``::``, empty) advertises ``advertise_host`` when given,
else this machine's host name. A bind to a named host advertises that name (the service name
in Kubernetes), a bind to loopback advertises loopback.
"""

from __future__ import annotations

import random
import socket as _socket
import threading
from typing import Any, Sequence
from urllib.parse import urlsplit

import zmq

WILDCARD_HOSTS = frozenset({"", "*", "0.0.0.0", "::", "[::]"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

#: libzmq pipes count messages, not bytes. Where dranspose keeps its own byte-bounded queue
#: behind a socket, the pipe is kept short so that queue is where data waits: a worker's
#: results wait in its outbox (``result_queue_bytes``), not in 2,000-message pipes.
RESULT_PIPE_MESSAGES = 64
#: An ingester reads its upstream ahead into its unit queue (``unit_queue_bytes``) while a
#: scan needs the frames; the socket's own pipe only covers a busy moment of its loop.
UPSTREAM_PIPE_MESSAGES = 256

_MORE = int(zmq.SNDMORE)
NOBLOCK = int(zmq.NOBLOCK)
_POLLIN = int(zmq.POLLIN)

# pyzmq's compiled socket, under its Python layer: called unbound, a part costs 0.3 us less
# (the instance's method lookup and the Python ``send`` wrapper, whose only work is the
# DRAFT ``routing_id``/``group`` options these helpers never pass)
_COMPILED_SEND = zmq.backend.Socket.send
_COMPILED_RECV = zmq.backend.Socket.recv
_PLAIN_SENDS = (zmq.Socket.send, _COMPILED_SEND)
_DIRECT: dict[type, bool] = {}  # socket type -> its send and recv are pyzmq's own


def _direct(t: type) -> bool:
    """Whether sockets of type ``t`` may be driven through the compiled methods: pyzmq's own
    blocking sockets, not a subclass that changes ``send``/``recv`` (``zmq.asyncio``, gevent)."""
    ok = _DIRECT.get(t)
    if ok is None:
        ok = issubclass(t, zmq.backend.Socket) and t.send in _PLAIN_SENDS and t.recv is _COMPILED_RECV
        if len(_DIRECT) < 64:  # socket types are a handful; never grows without bound
            _DIRECT[t] = ok
    return ok


def recv_parts(sock: "zmq.Socket[Any]", flags: int = 0) -> list[zmq.Frame]:
    """``sock.recv_multipart(flags, copy=False)``, reading "more" from each frame instead of a
    socket option per part (half the cost for a small message). The frames are the caller's."""
    recv = _COMPILED_RECV if _direct(type(sock)) else type(sock).recv
    frame = recv(sock, flags, copy=False)
    parts = [frame]
    while frame.more:
        frame = recv(sock, 0, copy=False)
        parts.append(frame)
    return parts


def readable(sock: "zmq.Socket[Any]") -> bool:
    """A message can be received now (``sock.poll(0)`` without building a poller)."""
    events = sock.getsockopt(zmq.EVENTS)
    return isinstance(events, int) and bool(events & _POLLIN)


def send_parts(sock: "zmq.Socket[Any]", parts: Sequence[Any], flags: int = 0, copy: bool = False) -> None:
    """``sock.send_multipart(parts, flags, copy=copy)`` without pyzmq's per-call type checks and
    enum arithmetic (a measurable share of a small event's cost). ``parts`` are frames this
    process built or received (bytes, buffers, ``zmq.Frame``); with ``copy=False`` the
    caller must not change them until sent. Raises ``zmq.Again`` (first part only) like
    ``send_multipart`` with NOBLOCK."""
    send = _COMPILED_SEND if _direct(type(sock)) else type(sock).send
    more = _MORE | flags
    last = len(parts) - 1
    for i, part in enumerate(parts):
        send(sock, part, more if i < last else flags, copy=copy)


def host_of(url: str) -> str:
    """The host part of ``scheme://host:port`` (``*`` kept, which urlsplit cannot parse)."""
    rest = url.split("://", 1)[-1]
    host, _, _port = rest.rpartition(":")
    return host.strip("[]") if host else rest


def advertise_host(bind_host: str, advertise: str | None = None) -> str:
    """The host name peers should use for a socket bound to ``bind_host``."""
    if bind_host in LOOPBACK_HOSTS:
        return bind_host
    if advertise:
        return advertise
    if bind_host in WILDCARD_HOSTS:
        return _socket.gethostname()
    return bind_host


def http_url(bind_host: str, port: int, advertise: str | None = None, named: str | None = None) -> str:
    """The advertised URL of an HTTP server bound to ``bind_host:port``. For a wildcard bind
    without ``advertise``, ``named`` (e.g. the host of the component's ZeroMQ URL, a service
    name) is preferred to the machine's host name when it is a real name."""
    if bind_host in WILDCARD_HOSTS and not advertise and named and named not in WILDCARD_HOSTS | LOOPBACK_HOSTS:
        advertise = named
    return f"http://{advertise_host(bind_host, advertise)}:{port}"


def bind(sock: "zmq.Socket[Any]", url: str, advertise: str | None = None) -> str:
    """Bind ``sock`` to the port of ``url``: on loopback for a loopback host, else on all
    interfaces; ``:0`` or ``:*`` picks a free port. Returns the URL others should connect to
    (see :func:`advertise_host`)."""
    if not url.startswith("tcp://"):
        sock.bind(url)
        return url
    host = host_of(url)
    port_text = url.rsplit(":", 1)[-1]
    port = 0 if port_text in ("*", "0") else int(urlsplit(url).port or 0)
    bind_host = "127.0.0.1" if host in LOOPBACK_HOSTS else "*"
    if port == 0:
        port = sock.bind_to_random_port(f"tcp://{bind_host}")
    else:
        sock.bind(f"tcp://{bind_host}:{port}")
    return f"tcp://{advertise_host(host, advertise)}:{port}"


#: Where Linux says from which range it picks source ports for outgoing connections. A port
#: handed out from that range can be taken by any ``connect`` (a Redis client, a ZeroMQ peer)
#: between the pick and the server's bind: ``Address already in use``. Ports are picked below it.
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_PICK_SPAN = 12000
_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        with open(EPHEMERAL_RANGE_FILE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with _socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port for a server started next (an HTTP server, a ZeroMQ bind in
    another process). Picked below the kernel's ephemeral range, so no outgoing connection
    takes it meanwhile, and never the same port twice in one process. Another process may
    still bind it first: callers that can, retry."""
    low = _ephemeral_low()
    first = max(1024, low - _PICK_SPAN)
    for _ in range(200):
        port = random.randrange(first, low) if low > first else 0
        with _handed_lock:
            if port and port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    with _socket.socket() as s:  # the range is full or unusual: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])
