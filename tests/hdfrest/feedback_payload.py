"""A user payload for the replayed-scan feedback test: the reducer emits one feedback
message per result through a FeedbackHub (set by the test) and publishes a running line."""

from __future__ import annotations

from typing import Any

import numpy as np

from dranspose.hdfrest.feedback import FeedbackHub

#: set by the test before replay starts
HUB: FeedbackHub | None = None
EMITTED: list[int] = []


class Worker:
    def __init__(self, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any = None, tick: bool = False) -> Any:
        return {"event": event.event_number, "streams": sorted(event.streams)}


class Reducer:
    def __init__(self, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"line": np.zeros(0)}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        event = int(result.payload["event"])
        self.publish["line"] = np.append(self.publish["line"], event)
        assert HUB is not None
        HUB.emit({"event": event, "worker": result.worker, "n": len(self.publish["line"])})
        EMITTED.append(event)

    def finish(self, parameters: Any = None) -> None:
        assert HUB is not None
        HUB.emit({"finished": True})
