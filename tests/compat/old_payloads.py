"""Payload classes in the style of the old dranspose examples (examples/dummy, params, timing):
keyword-only constructors, the old imports, their own module loggers, a reducer that only
publishes from its timer (as XRF mapping does), and a custom ingester with a software-triggered
stream."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, AsyncGenerator, Iterator

import numpy as np
import zmq

from dranspose.event import EventData, ResultData, StreamData
from dranspose.helpers.incremental import IncrementalBuffer
from dranspose.ingester import Ingester, IsSoftwareTriggered
from dranspose.parameters import IntParameter, ParameterBase, StrParameter
from dranspose.protocol import ParameterName, ReducerState, StreamName, WorkParameter

logger = logging.getLogger("beamline_analysis.worker")
rlogger = logging.getLogger("beamline_analysis.reducer")

#: reducers of this module register here so tests can read what they published
REDUCERS: list[Any] = []


class MeanWorker:
    def __init__(self, **kwargs: Any) -> None:
        self.state = kwargs["state"]
        self.ticks = 0

    @staticmethod
    def describe_parameters() -> list[ParameterBase]:
        return [IntParameter(name=ParameterName("offset"), default=0), StrParameter(name=ParameterName("label"), default="a")]

    def process_event(
        self, event: EventData, parameters: dict[ParameterName, WorkParameter] | None = None, *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        assert parameters is not None
        if "temperature" in event.streams:
            temp = json.loads(bytes(event.streams[StreamName("temperature")].frames[0]))
            logger.warning("temperature at event %d is %s", event.event_number, temp["t"])
        if "cam" not in event.streams:
            return None
        frame = event.streams[StreamName("cam")].frames[0]
        raw = frame.bytes if isinstance(frame, zmq.Frame) else bytes(frame)
        if not raw.startswith(b"v"):
            logger.warning("header or end message at event %d", event.event_number)
            return None
        value = int(raw[1:]) + parameters[ParameterName("offset")].value
        return {
            "event": event.event_number,
            "value": value,
            "worker": self.state.name,
            "version": self.state.dranspose_version,
            "params": self.state.parameters_hash,
        }

    def get_tick_interval(self, parameters: Any = None) -> float:
        return 0.0  # every event ticks: the rule is the same live and in replay

    def finish(self, parameters: Any = None) -> None:
        logger.warning("worker %s finished", self.state.name)


class TimerFitReducer:
    """Buffers results; only ``timer`` moves them into ``publish`` (so a replay whose timer
    stopped with the last event would publish nothing)."""

    def __init__(self, state: ReducerState | None = None, **kwargs: Any) -> None:
        self.state = state
        self.pending: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.values = IncrementalBuffer(initial_rows=2, grow_factor=1.5, filler_value=-1)
        self.publish: dict[str, Any] = {"values": np.zeros((0,)), "fits": 0, "hashes": []}
        self.state_seen = {
            "name": getattr(state, "name", None),
            "dranspose_version": getattr(state, "dranspose_version", None),
            "mapreduce_version": getattr(state, "mapreduce_version", None),
        }
        REDUCERS.append(self)

    def process_result(self, result: ResultData, parameters: dict | None = None) -> None:
        with self.lock:
            self.pending.append((result.event_number, result.payload["value"]))
            if result.payload["params"] not in self.publish["hashes"]:
                self.publish["hashes"].append(result.payload["params"])

    def timer(self) -> float:
        with self.lock:
            todo, self.pending = self.pending, []
        for event, value in todo:
            self.values.add_entry(event, value)
        if todo:
            self.publish["values"] = np.asarray(self.values)
            self.publish["fits"] += 1
            rlogger.warning("fitted %d results", len(todo))
        return 0.05

    def finish(self, parameters: Any = None) -> None:
        self.publish["finished_parameters_hash"] = getattr(self.state, "parameters_hash", None)


class JsonPullIngester(Ingester):
    """An old-API custom ingester: JSON messages pulled from ``upstream_url`` on every stream
    except ``temperature``, which is software-triggered."""

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings=settings)
        self.readings = 0

    async def run_source(self, stream: StreamName) -> AsyncGenerator[StreamData | IsSoftwareTriggered, None]:
        if stream == "temperature":
            while True:
                yield IsSoftwareTriggered()
        sock = self.ctx.socket(zmq.PULL)
        sock.connect(str(self._ingester_settings.upstream_url))
        try:
            while True:
                parts = await sock.recv_multipart(copy=False)
                yield StreamData(typ="JSONX", frames=parts)
                if parts[0].bytes == b"end":
                    break  # end of series, as the old built-in ingesters: restarted at the next scan
        finally:
            sock.close(linger=0)

    def software_trigger(self) -> Iterator[dict[StreamName, StreamData]]:
        while True:
            self.readings += 1
            data = {"t": 300 + self.readings}
            yield {StreamName("temperature"): StreamData(typ="JSON", frames=[zmq.Frame(json.dumps(data).encode())])}
