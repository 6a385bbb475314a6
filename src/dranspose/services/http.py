"""Running a FastAPI app under uvicorn in a background thread (reducer, replay, tests)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from dranspose.errors import ConfigError


class BackgroundServer:
    """A uvicorn server in a daemon thread. ``port=0`` binds a free port; ``.port`` tells it.

    The listening socket is bound in ``start()`` (a port in use is a clear ConfigError) and
    ``start()`` returns once the server accepts connections."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        # log_config=None: a background server must not reset the process's logging (uvicorn's
        # dictConfig would close every handler already installed, e.g. the log forwarding)
        self.config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False, log_config=None)
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
