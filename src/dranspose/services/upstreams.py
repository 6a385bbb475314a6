"""Where an ingester's stream comes from: a ZeroMQ PULL/SUB socket (connect), a TCP client
(PandA position capture) or an HTTP server (Sardana POSTs).

Each upstream exposes ``pollable`` (registered in the ingester's ``zmq.Poller``),
``receive() -> list of messages`` (each message a list of frames, handed to the cutter) and
``close()``. ZeroMQ frames are received with ``copy=False`` and passed on untouched.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import zmq
from fastapi import FastAPI, Request  # module level: FastAPI resolves the handler's annotations here
from fastapi.responses import JSONResponse

from dranspose.errors import ConfigError, ProtocolError
from dranspose.services.access import AccessPolicy, protect
from dranspose.transport.sockets import NOBLOCK, UPSTREAM_PIPE_MESSAGES, readable, recv_parts

HTTP_MAX_BODY = 16 * 1024 * 1024  # an HTTP upstream message (Sardana posts a few kB)

log = logging.getLogger(__name__)

Message = list[Any]


class Upstream(Protocol):
    """``receive`` never blocks: it returns the messages waiting now, ``[]`` when none does (the
    data loop reads on until it gets ``[]``). ``has_more``: does a message wait now?"""

    pollable: Any

    def receive(self) -> list[Message]: ...

    def has_more(self) -> bool: ...

    def maintain(self) -> None: ...

    def close(self) -> None: ...


class ZmqReceiver:
    """Receiving side shared by upstreams that end in a ZeroMQ socket (``pollable``)."""

    pollable: zmq.Socket

    def receive(self) -> list[Message]:
        """The next message, or none when nothing waits (never blocks)."""
        try:
            return [recv_parts(self.pollable, NOBLOCK)]
        except zmq.Again:
            return []

    def has_more(self) -> bool:
        """A message waits now. Asked after the first read of a pass: at low rates a pass reads
        one message, and a read that finds nothing raises ``zmq.Again`` inside pyzmq, which
        cost an idle-woken ingester ~30 us per frame; after a second message the ingester reads
        on until a read finds nothing (asking costs a syscall per message)."""
        return readable(self.pollable)

    def maintain(self) -> None:
        pass


class ZmqUpstream(ZmqReceiver):
    """A PULL or SUB socket connected to the device (SUB subscribes to everything)."""

    def __init__(self, ctx: zmq.Context, url: str, pattern: str) -> None:
        self.pollable = ctx.socket(zmq.SUB if pattern == "SUB" else zmq.PULL)
        if pattern == "SUB":
            self.pollable.setsockopt(zmq.SUBSCRIBE, b"")
        self.pollable.setsockopt(zmq.RCVHWM, UPSTREAM_PIPE_MESSAGES)
        self.pollable.connect(url)

    def close(self) -> None:
        self.pollable.close(linger=0)


class TcpUpstream:
    """A TCP client (PandA position capture): sends the options line on connect, splits the
    byte stream into messages, reconnects every second after the device closes."""

    def __init__(self, url: str) -> None:
        from dranspose.protocols import positioncap

        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        if not parts.hostname:
            raise ConfigError(f"TCP upstream {url!r} needs tcp://host:port")
        self.address = (parts.hostname, parts.port or positioncap.DEFAULT_PORT)
        self._module = positioncap
        self.pollable: Any = None
        self._next_try = 0.0
        self.malformed = 0  # problems the byte-stream splitter recovered from
        self.maintain()

    def _connect(self) -> None:
        sock = socket.create_connection(self.address, timeout=2)
        sock.sendall(self._module.OPTIONS_LINE)
        sock.setblocking(False)
        self.pollable = sock
        self.splitter = self._module.PositionCapSplitter(expect_ok=True)
        log.info("connected to position capture at %s:%d", *self.address)

    def maintain(self) -> None:
        if self.pollable is None and time.monotonic() >= self._next_try:
            try:
                self._connect()
            except OSError as exc:
                self._next_try = time.monotonic() + 1.0
                log.warning("cannot connect to %s:%d (%s); retrying", *self.address, exc)

    def receive(self) -> list[Message]:
        try:
            chunk = self.pollable.recv(1 << 16)
        except BlockingIOError:
            return []
        except OSError as exc:
            chunk = b""
            log.warning("position capture connection failed: %s", exc)
        if not chunk:
            self.close()
            self._next_try = time.monotonic() + 1.0
            return []
        messages = [[m] for m in self.splitter.feed(chunk)]
        for problem in self.splitter.take_errors():  # the splitter resynchronises by itself
            self.malformed += 1
            log.warning("position capture from %s:%d: %s", *self.address, problem)
        return messages

    def has_more(self) -> bool:
        return False

    def close(self) -> None:
        if self.pollable is not None:
            self.pollable.close()
            self.pollable = None


class HttpUpstream(ZmqReceiver):
    """HTTP POSTs (Sardana) as an upstream; messages reach the data loop over inproc.

    With ``url`` it serves its own HTTP server there; without, an app that embeds the
    ingester (``dranspose.ingesters.http_sardana:app``) passes requests to :meth:`handle`."""

    def __init__(self, ctx: zmq.Context, url: str | None, make_message: Callable[[str, bytes], list[bytes] | None]) -> None:
        inproc = f"inproc://http-upstream-{id(self)}"
        self.pollable = ctx.socket(zmq.PULL)
        self.pollable.bind(inproc)
        self._push = ctx.socket(zmq.PUSH)
        self._push.connect(inproc)
        self._make_message = make_message
        self.server: Any = None
        self.url: str | None = None
        if url is not None:
            from dranspose.services.http import BackgroundServer

            parts = urlsplit(url)
            app = FastAPI(title="dranspose HTTP ingester")
            protect_http_ingester(app)

            @app.post("/{path:path}")
            async def receive(path: str, request: Request) -> JSONResponse:
                return self.handle("/" + path, await request.body())

            self.server = BackgroundServer(app, parts.hostname or "127.0.0.1", parts.port or 0).start()
            self.url = self.server.url

    def handle(self, path: str, body: bytes) -> JSONResponse:
        """One POST: 422 for a malformed body, else whether it became a message."""
        try:
            message = self._make_message(path, body)
        except ProtocolError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        except Exception as exc:  # a hostile body must not reach the event loop's error page
            log.warning("HTTP upstream: message to %s refused: %r", path, exc)
            return JSONResponse({"detail": f"message refused: {type(exc).__name__}: {exc}"}, status_code=400)
        if message is not None:
            self._push.send_multipart(message)
        return JSONResponse({"accepted": message is not None})

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self._push.close(linger=0)
        self.pollable.close(linger=0)


def protect_http_ingester(app: FastAPI) -> None:
    """Host check and body size; no token: the control system posts here as before."""
    protect(app, dataclasses.replace(AccessPolicy.from_env(max_body_bytes=HTTP_MAX_BODY), token=None))


def open_upstream(ctx: zmq.Context, url: str, pattern: str) -> Upstream:
    if pattern in ("PULL", "SUB"):
        return ZmqUpstream(ctx, url, pattern)
    if pattern == "TCP":
        return TcpUpstream(url)
    if pattern == "HTTP":
        from dranspose.protocols import sardana

        return HttpUpstream(ctx, url, sardana.message_from_request)
    raise ConfigError(f"unknown upstream socket pattern {pattern!r}")
