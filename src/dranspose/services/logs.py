"""Log records of a component -> the shared Redis log stream (``GET /api/v1/logs``,
``/api/v1/log_stream``).

The handler sits on the root logger, so the payload's own loggers reach the stream as well as
``dranspose.*`` (records at or above ``log_forward_level``, default INFO). Entries carry the old
field names (``msg``, ``levelname``, ``name``, ``lineno``, ``created``) plus ``component``.
``emit`` never does I/O: it puts the entry on a bounded queue that a daemon thread ships in
pipelined batches, so logging from user code never waits on Redis; when the queue is full,
entries are dropped and counted (``dropped``). Access logs of the HTTP servers are not shipped.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

import redis

LOG_STREAM_MAXLEN = 2000
QUEUE_MAX = 10000
MESSAGE_MAX = 4000
SKIP_LOGGERS = ("uvicorn.access",)


def level_number(level: str | int) -> int:
    """A level name (``info``, ``WARNING``) or number -> its number; ValueError otherwise."""
    if isinstance(level, int):
        return level
    text = str(level).strip()
    if text.isdigit():
        return int(text)
    number = logging.getLevelNamesMapping().get(text.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


def record_entry(record: logging.LogRecord, component: str, message: str) -> dict[str, str]:
    """The stream entry of one record (all values strings, as Redis stores them)."""
    return {
        "msg": message[:MESSAGE_MAX],
        "levelname": record.levelname,
        "name": record.name,
        "lineno": str(record.lineno),
        "created": f"{record.created:.6f}",
        "component": component,
    }


class RedisLogHandler(logging.Handler):
    """Ships records to the stream ``key`` from a background thread (see module doc)."""

    def __init__(self, client: redis.Redis, key: str, component: str, level: int = logging.INFO) -> None:
        super().__init__(level=level)
        self.client, self.key, self.component = client, key, component
        self._queue: collections.deque[dict[str, str]] = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0
        self._thread: threading.Thread | None = None  # started by the first record (no work at construction)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SKIP_LOGGERS) or self._closed:
            return
        try:
            message = self.format(record)
        except Exception:  # a bad format string in user code must not break logging
            message = str(record.msg)
        with self._ready:
            if len(self._queue) >= QUEUE_MAX:
                self.dropped += 1
                return
            self._queue.append(record_entry(record, self.component, message))
            if self._thread is None:
                self._thread = threading.Thread(target=self._ship, name=f"logs-{self.component}", daemon=True)
                self._thread.start()
            self._ready.notify()

    def _ship(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait(1.0)
                if not self._queue and self._closed:
                    return
                batch = list(self._queue)
                self._queue.clear()
            try:
                pipe = self.client.pipeline(transaction=False)
                for entry in batch:
                    pipe.xadd(self.key, entry, maxlen=LOG_STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
                pipe.execute()
            except Exception:  # logging must never take the component down; Redis may be away
                self.dropped += len(batch)

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (up to ``timeout``) until queued entries were shipped."""
        import time

        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(2.0)
        super().close()


def install(client: redis.Redis, key: str, component: str, level: str | int = logging.INFO) -> RedisLogHandler:
    """Add a handler to the root logger (the payload's loggers propagate there)."""
    handler = RedisLogHandler(client, key, component, level_number(level))
    logging.getLogger().addHandler(handler)  # the root's level (LOG_LEVEL) still applies first
    return handler


def uninstall(handler: RedisLogHandler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def read_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry as the REST API returns it: the old fields, plus ``message``/``level``/
    ``logger``/``time`` aliases of earlier versions of this API."""
    e: dict[str, Any] = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
    e.setdefault("message", e.get("msg", ""))
    e.setdefault("msg", e["message"])
    e.setdefault("level", e.get("levelname", ""))
    e.setdefault("levelname", e["level"])
    e.setdefault("logger", e.get("name", ""))
    e.setdefault("name", e["logger"])
    e.setdefault("time", e.get("created", ""))
    e.setdefault("created", e["time"])
    return e


def entry_level(entry: dict[str, Any]) -> int:
    """The level of a stream entry (old ``levelname`` or the earlier ``level`` field)."""
    name = entry.get("levelname") or entry.get("level") or "DEBUG"
    try:
        return level_number(name)
    except ValueError:
        return logging.DEBUG
