"""Test payloads: a worker that reports what it saw, a reducer that keeps every result."""

from __future__ import annotations

import os
import threading
from typing import Any

from dranspose.parameters import IntParameter, StrParameter


class RecordingWorker:
    """Returns, per event, which frames of which streams arrived here and the parameters seen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state = kwargs.get("state")
        self.context = kwargs.get("context")
        self.name = self.state.name  # the old WorkerState attribute
        self.count = 0

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [IntParameter(name="scale", default=1), StrParameter(name="fail_on", default="")]

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        self.count += 1
        fail_on = parameters["fail_on"].value
        if fail_on and str(event.event_number) in fail_on.split(","):
            raise RuntimeError(f"requested failure at event {event.event_number}")
        frames = {
            name: [bytes(f.bytes if hasattr(f, "bytes") else f) for f in s.frames] for name, s in event.streams.items()
        }
        return {
            "event": event.event_number,
            "frames": frames,
            "typs": {name: s.typ for name, s in event.streams.items()},
            "scale": parameters["scale"].value,
            "pid": os.getpid(),
            "name_from_state": self.name,
            "seen_here": self.count,
            "tick": tick,
            "created_at": event.created_at.timestamp() if getattr(event, "created_at", None) else None,
        }

    def get_tick_interval(self, parameters: Any) -> float:
        return 0.1

    def finish(self, parameters: Any = None) -> None:
        self.finished = True


class RecordingReducer:
    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        self.results: list[Any] = []
        self.finished = False
        self.lock = threading.Lock()
        self.publish: dict[str, Any] = {"count": 0}

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [StrParameter(name="reducer_label", default="none")]

    def process_result(self, result: Any, parameters: Any = None) -> None:
        with self.lock:
            self.results.append(result)
            self.publish["count"] = len(self.results)
            self.publish["label"] = parameters["reducer_label"].value

    def finish(self, parameters: Any = None) -> None:
        self.finished = True


class FeedbackReducer(RecordingReducer):
    """Emits one feedback message per result through the reducer's hub (``context``)."""

    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        super().__init__(parameters, context, **kwargs)
        self.feedback = context["feedback"]

    def process_result(self, result: Any, parameters: Any = None) -> None:
        super().process_result(result, parameters)
        self.feedback.emit({"event": result.event_number, "worker": result.worker})
