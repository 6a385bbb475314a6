"""Fault-test payloads: a worker that returns its event number, a reducer that appends every
event it processed to a file per process (``$FAULT_RESULTS_DIR/reducer-<start ns>-<pid>.txt``,
so the newest sorts last), and the test reads exactly what the current reducer process holds."""

from __future__ import annotations

import os
import time
from typing import Any


class EventWorker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.delay = float(os.environ.get("FAULT_EVENT_DELAY", "0.002"))

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        time.sleep(self.delay)
        return {"event": event.event_number}


class FileReducer:
    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        folder = os.environ.get("FAULT_RESULTS_DIR", ".")
        self.file = open(os.path.join(folder, f"reducer-{time.time_ns():020d}-{os.getpid()}.txt"), "a", buffering=1)
        self.publish: dict[str, Any] = {"count": 0}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        self.file.write(f"{result.event_number}\n")
        self.publish["count"] += 1

    def finish(self, parameters: Any = None) -> None:
        self.file.write("finish\n")


class StuckWorker(EventWorker):
    """Hangs in ``process_event`` of event 3 for a few seconds (user code gone astray)."""

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        if event.event_number == 3:
            time.sleep(4.0)
        return {"event": event.event_number}


class ListReducer:
    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        self.events: list[int] = []
        self.publish: dict[str, Any] = {}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        self.events.append(result.event_number)
