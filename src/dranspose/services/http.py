"""Running a FastAPI app under uvicorn in a background thread (reducer, replay, tests)."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from dranspose.errors import ConfigError
from dranspose.services import stop_deadline

#: seconds uvicorn waits, once told to stop, for responses still streaming (a client following
#: the controller's log stream or the reducer's feedback never ends its request): then it
#: cancels them and stops. Without it such a client kept a signalled server up for good.
SHUTDOWN_GRACE_S = 5.0


class _TellingServer(uvicorn.Server):
    """uvicorn's server that also sets ``stopping`` the moment a signal comes, so that the
    app's endless responses (the controller's log stream) end before the server waits for them,
    and arms the stop deadline (``services/stop_deadline.py``)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event | None, grace_s: float) -> None:
        super().__init__(config)
        self.stopping = stopping
        self.grace_s = grace_s

    def handle_exit(self, sig: int, frame: Any) -> None:
        stop_deadline.arm(self.grace_s)
        if self.stopping is not None:
            self.stopping.set()
        super().handle_exit(sig, frame)


def run_app(app: Any, host: str, port: int, log_level: str, grace_s: float = stop_deadline.STOP_GRACE_S) -> None:
    """Serve ``app`` in this (main) thread until SIGINT or SIGTERM, then exit with status 0
    (uvicorn stops gracefully, then re-raises the signal to the handler set here). An app with
    ``app.state.stopping`` (a ``threading.Event``) is told at once; responses still streaming
    after :data:`SHUTDOWN_GRACE_S` are cancelled. A server that cannot start exits with 3, as
    ``uvicorn.run`` does. Whatever the stop gets stuck in (the app's shutdown, a thread that
    never ends and keeps the interpreter from exiting), the process ends ``grace_s`` after the
    first signal, every thread's stack on stderr, status 1."""

    def _exit(*_: Any) -> None:  # a signal before uvicorn took them, or re-raised after it stopped
        stop_deadline.arm(grace_s)
        sys.exit(0)

    signal.signal(signal.SIGTERM, _exit)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    server = _TellingServer(config, getattr(getattr(app, "state", None), "stopping", None), grace_s)
    try:
        server.run()
    except KeyboardInterrupt:  # SIGINT before uvicorn took the signals, or re-raised after it stopped
        stop_deadline.arm(grace_s)
    if not server.started:
        sys.exit(3)


class BackgroundServer:
    """A uvicorn server in a daemon thread. ``port=0`` binds a free port; ``.port`` tells it.

    The listening socket is bound in ``start()`` (a port in use is a clear ConfigError) and
    ``start()`` returns once the server accepts connections."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        # log_config=None: a background server must not reset the process's logging (uvicorn's
        # dictConfig would close every handler already installed, e.g. the log forwarding)
        self.config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False, log_config=None,
                                     timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        self.server = uvicorn.Server(self.config)
        self.thread: threading.Thread | None = None
        self.host = host
        self.port = port
        self._error: BaseException | None = None

    def start(self, timeout: float = 20.0) -> "BackgroundServer":
        try:
            sock = socket.create_server((self.host, self.port))
        except OSError as exc:
            raise ConfigError(f"cannot serve HTTP on {self.host}:{self.port}: {exc}") from exc
        # accepted connections inherit it: without, every small response on a kept-alive
        # connection waits ~40 ms for the client's delayed ACK (Nagle), e.g. each h5pyd request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = int(sock.getsockname()[1])
        from dranspose.services.access import warn_if_exposed

        warn_if_exposed(getattr(self.config.app, "title", "HTTP server"), self.host)

        def run() -> None:
            try:
                self.server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                sock.close()

        self.thread = threading.Thread(target=run, name="http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"HTTP server on {self.host}:{self.port} did not start: {self._error!r}")
            time.sleep(0.005)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
