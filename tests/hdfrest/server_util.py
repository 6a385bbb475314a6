"""Run an ASGI app under uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class FiveXXRecorder:
    """ASGI middleware recording every response status >= 500 (tests assert none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failures: list[tuple[str, str, int]] = []
        #: (method, path, query, content-type) of every request
        self.requests: list[tuple[str, str, str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode()
        self.requests.append((scope["method"], scope["path"], query, ctype))

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                self.failures.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, wrapped_send)
        except Exception:
            self.failures.append((scope["method"], scope["path"], 500))
            raise


@contextmanager
def serve(app: Any, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 with an OS-chosen port; yields ``http://127.0.0.1:PORT``."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + timeout
    while not (server.started and server.servers):
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


class Source:
    """Stands in for a reducer: ``publish`` plus ``publish_rlock``."""

    def __init__(self, publish: dict[str, Any]) -> None:
        self.publish = publish
        self.publish_rlock = threading.RLock()
