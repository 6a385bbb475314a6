"""Running a FastAPI app under uvicorn in a background thread (reducer, replay, tests)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn


class BackgroundServer:
    """A uvicorn server in a daemon thread. ``port=0`` binds a free port; ``.port`` tells it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"HTTP server on {self.host}:{self.config.port} failed to start (port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server on {self.host}:{self.config.port} did not start in {timeout} s")
            time.sleep(0.01)
        sockets = [s for srv in self.server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
