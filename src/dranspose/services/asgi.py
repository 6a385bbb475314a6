"""ASGI helpers for the module-level apps (``uvicorn dranspose.controller:app``).

:class:`LazyApp` builds its app on first use, so importing a module that holds one reads no
environment and starts nothing. :func:`component_lifespan` runs a service's data loop in a
thread for the lifespan of the app that serves it.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from dranspose.services.component import Component, install_log_forwarding, remove_log_forwarding


class LazyApp:
    """An ASGI application built by ``factory()`` at its first call (usually the lifespan
    startup); every later call goes to the same app."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The built app (built now if it was not yet)."""
        with self._lock:
            if self._app is None:
                self._app = self._factory()
            return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def component_lifespan(component: Component) -> Callable[[Any], Any]:
    """A FastAPI lifespan that starts ``component`` (Redis check, sockets, threads), runs its
    data loop in a thread while the app is served, and stops it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        install_log_forwarding(component.settings, f"{component.kind}:{component.name}")
        await asyncio.to_thread(component.start)
        loop = threading.Thread(target=component.run, name=f"{component.kind}-loop", daemon=True)
        loop.start()
        try:
            yield
        finally:
            component.stop()
            await asyncio.to_thread(loop.join, 10)
            component.join_background()
            remove_log_forwarding()

    return lifespan
