"""The analysis the deployment tests run: every event gives one result per worker that got it;
the reducer publishes, as root attributes, how many results it took and which events they
covered (read back over HDF REST to check the accounting)."""

from __future__ import annotations

from typing import Any

from dranspose.event import EventData, ResultData


class CountWorker:
    def __init__(self, **kwargs: Any) -> None:
        pass

    def process_event(self, event: EventData, parameters: Any = None, tick: bool = False) -> dict[str, Any]:
        return {"event": int(event.event_number), "streams": sorted(event.streams)}


class CountReducer:
    def __init__(self, **kwargs: Any) -> None:
        self.events: set[int] = set()
        self.results = 0
        self.publish: dict[str, Any] = {"_attrs": {"results": 0, "events": []}}

    def process_result(self, result: ResultData, parameters: Any = None) -> None:
        self.results += 1
        self.events.add(int(result.payload["event"]))
        self.publish["_attrs"] = {"results": self.results, "events": sorted(self.events)}
