"""Worker, reducer and source classes used by the replay tests (loaded by class path)."""

from __future__ import annotations

import json
import threading
from typing import Any, Iterator

import numpy as np

from dranspose.event import EventData, InternalWorkerMessage, ResultData, StreamData
from dranspose.parameters import IntParameter, StrParameter
from dranspose.protocol import EventNumber, StreamName

# What the reducers saw, by test-chosen key (replay runs in-process).
SEEN: dict[str, Any] = {}


class SumWorker:
    """Returns per event {stream: sum of uint16 pixels or None} plus its own name."""

    def __init__(self, parameters: Any, context: Any, state: Any = None) -> None:
        self.name = getattr(state, "name", "?")
        self.events: list[int] = []

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [IntParameter(name="offset", default=0)]

    def process_event(self, event: EventData, parameters: Any, tick: bool = False) -> Any:
        self.events.append(event.event_number)
        sums: dict[str, Any] = {}
        for name, stream in event.streams.items():
            meta = json.loads(stream.frames[0])
            if meta.get("htype") == "image" and meta.get("compression") == "none":
                arr = np.frombuffer(stream.frames[1], dtype=meta["type"])
                sums[name] = int(arr.sum()) + parameters["offset"].value
            else:
                sums[name] = meta.get("htype")
        return {"worker": self.name, "sums": sums, "tick": tick}


class FailingWorker(SumWorker):
    """Raises for event 3."""

    def process_event(self, event: EventData, parameters: Any, tick: bool = False) -> Any:
        if event.event_number == 3:
            raise ZeroDivisionError("event three is cursed")
        return super().process_event(event, parameters, tick)


class CollectReducer:
    """Collects every result; publishes sums per event; a timer that returns junk once when the
    ``label`` parameter starts with ``timer`` (the hook then logs an error and retries)."""

    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"sums": {}, "count": 0}
        self.results: list[ResultData] = []
        self.timer_calls = 0
        self.finished = False
        self.label = parameters["label"].value
        SEEN[self.label] = self

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [StrParameter(name="label", default="default")]

    def process_result(self, result: ResultData, parameters: Any) -> None:
        self.results.append(result)
        self.publish["count"] += 1
        for name, value in result.payload["sums"].items():
            if isinstance(value, int):
                self.publish["sums"][f"{name}_{result.event_number}"] = value

    def timer(self) -> Any:
        self.timer_calls += 1
        return "not a number" if self.timer_calls == 1 and self.label.startswith("timer") else 0.01

    def finish(self, parameters: Any) -> None:
        self.finished = True


def _stins_stream(n: int, scale: int) -> Iterator[InternalWorkerMessage]:
    yield _msg(0, "a" if scale == 1 else "b", [json.dumps({"htype": "header", "msg_number": 0, "filename": ""})])
    for i in range(1, n + 1):
        arr = np.full((4, 4), i * scale, dtype=np.uint16)
        meta = {"htype": "image", "msg_number": i, "frame": i - 1, "shape": [4, 4], "type": "uint16", "compression": "none"}
        yield _msg(i, "a" if scale == 1 else "b", [json.dumps(meta).encode(), arr.tobytes()])


def _msg(evn: int, stream: str, frames: list[Any]) -> InternalWorkerMessage:
    return InternalWorkerMessage(
        event_number=EventNumber(evn), streams={StreamName(stream): StreamData(typ="STINS", frames=frames)}
    )


class TwoStreamSource:
    """Stream ``a`` has 4 images, stream ``b`` 9: replay must go on to event 9."""

    def get_source_generators(self) -> list[Iterator[InternalWorkerMessage]]:
        return [_stins_stream(4, 1), _stins_stream(9, 10)]


class ExplodingSource:
    """A generator that fails after two messages."""

    def get_source_generators(self) -> list[Iterator[InternalWorkerMessage]]:
        def gen() -> Iterator[InternalWorkerMessage]:
            yield from list(_stins_stream(1, 1))
            raise OSError("network share vanished")

        return [gen()]


class BlockingReducer(CollectReducer):
    """A reducer whose publish holds an array (for HDF REST)."""

    def __init__(self, parameters: Any = None, context: Any = None, **kwargs: Any) -> None:
        super().__init__(parameters, context)
        self.publish_rlock = threading.RLock()
        self.publish["image"] = np.arange(6, dtype=np.float32).reshape(2, 3)
