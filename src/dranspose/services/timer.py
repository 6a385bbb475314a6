"""The reducer's ``timer`` thread, shared by the reducer service and replay.

It calls the user's ``timer()`` (through :class:`dranspose.hooks.ReducerHooks`) whenever the
returned delay has passed, under the lock that serialises every reducer call, until
``stop()``. It keeps running after the last result and after ``finish`` (a reducer may fit
buffered data in its timer): the owner stops it at shutdown. ``wake()`` calls it at once
(a new reducer object at a new scan).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, ContextManager

log = logging.getLogger(__name__)


class TimerThread:
    def __init__(
        self,
        hooks: Callable[[], Any],
        lock: ContextManager[Any],
        parameters: Callable[[], Any],
        name: str = "reducer-timer",
    ) -> None:
        self._hooks = hooks
        self._lock = lock
        self._parameters = parameters
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.calls = 0

    def start(self) -> "TimerThread":
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = 1.0
            try:
                with self._lock:
                    hooks = self._hooks()
                    if hooks is not None and hooks.has_timer and not self._stop.is_set():
                        delay = hooks.timer(self._parameters())
                        self.calls += 1
            except Exception as exc:  # the adapter already guards user code; never let the thread die
                log.error("reducer timer failed: %r; retrying in 1 s", exc)
                delay = 1.0
            self._wake.wait(max(delay, 0.001))
            self._wake.clear()
