"""The debug worker: a worker that runs no analysis and keeps the last events it received
(``GET /api/v1/last_events?number=N``, a pickled list of ``EventData`` with ``bytes`` frames,
as the old debug worker served). Deployed with tags like ``debugworker`` so trigger maps can
send it a copy of chosen events."""

from __future__ import annotations

import collections
import pickle
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from dranspose.config import Settings
from dranspose.event import EventData
from dranspose.services.worker import Worker

KEEP = 50


class DebugWorker(Worker):
    """Completes every event it receives without user code and keeps the last ``KEEP``."""

    def __init__(self, name: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(name, settings, worker_class=None, **kwargs)
        self.cls = None
        self.buffer: collections.deque[EventData] = collections.deque(maxlen=KEEP)
        self._buffer_lock = threading.Lock()

    def _process(self, event: EventData) -> None:
        copy = EventData.model_construct(
            event_number=event.event_number, streams={k: v.get_bytes() for k, v in event.streams.items()}
        )
        with self._buffer_lock:
            self.buffer.append(copy)
        super()._process(event)  # no hooks: no result, the event is reported done

    def last_events(self, number: int) -> list[EventData]:
        """The last ``number`` events, oldest first."""
        with self._buffer_lock:
            events = list(self.buffer)
        return events[-number:] if number > 0 else []


def add_routes(app: FastAPI, worker: DebugWorker) -> None:
    """The old debug worker's endpoints."""

    @app.get("/api/v1/status")
    def status() -> bool:
        return True

    @app.get("/api/v1/last_events")
    def last_events(number: int = 1) -> Response:
        number = max(0, min(number, KEEP))
        return Response(pickle.dumps(worker.last_events(number)), media_type="application/x.pickle")
