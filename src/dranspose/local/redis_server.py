"""A private ``redis-server`` on a free loopback port (for ``combined`` and the tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from dranspose.errors import ConfigError
from dranspose.services import parent_watch
from dranspose.transport.sockets import free_tcp_port


def find_redis_server() -> str:
    """The redis-server binary: $DRANSPOSE_REDIS_SERVER, PATH, or one installed by pip next to
    this Python (the ``redis-server`` wheel). Raises ConfigError with install hints."""
    explicit = os.environ.get("DRANSPOSE_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    try:  # the PyPI package 'redis-server' ships the binary inside the package
        import redis_server  # type: ignore[import-not-found]

        return str(redis_server.REDIS_SERVER_PATH)
    except (ImportError, AttributeError):
        pass
    raise ConfigError(
        "redis-server not found: install it (Debian/Ubuntu: apt-get install redis-server), "
        "or give a running one with --redis-url / REDIS_URL"
    )


class RedisServer:
    """Start ``redis-server`` without persistence on 127.0.0.1 and a free port; stop on exit."""

    def __init__(self, port: int | None = None, end_with_this_process: bool = False) -> None:
        """``end_with_this_process``: the server ends when this process does, even killed
        outright (Linux; start it from the main thread): ``dranspose combined``'s own Redis."""
        self.port = port or free_tcp_port()
        self.end_with_this_process = end_with_this_process
        self.dir = tempfile.mkdtemp(prefix="dranspose-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        binary = find_redis_server()
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.end_with_this_process:
            args = parent_watch.ending_with_me(args)
        # its own process group: a Ctrl-C in the terminal must not end Redis before the components
        # that use it; the same session: the same scheduling group as them (local/supervisor.py)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     process_group=0)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise ConfigError(f"redis-server exited at start: {err.strip()}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ConfigError(f"redis-server did not answer on port {self.port} within {timeout} s") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
