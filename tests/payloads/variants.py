"""User classes in the shapes found in real payloads (COMPAT §2)."""

from __future__ import annotations

import time
from typing import Any


class KwargsOnlyWorker:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        return ("kw", event.event_number)


class RequiredArgsWorker:
    def __init__(self, parameters: Any, context: Any) -> None:
        self.parameters, self.context = parameters, context
        context["constructed"] = context.get("constructed", 0) + 1

    def process_event(self, event: Any, parameters: Any, tick: bool) -> Any:
        return ("req", event.event_number, tick)

    def finish(self, parameters: Any) -> None:
        self.finished_with = parameters


class StarArgsWorker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state = kwargs["state"]

    def process_event(self, event: Any, parameters: Any, tick: bool = False) -> Any:
        return None  # nothing for the reducer

    def finish(self, *, parameters: Any = None) -> None:
        self.finished_kw = parameters

    def close(self, context: Any) -> None:
        context["closed"] = True


class TimerNoArgReducer:
    def __init__(self, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {}
        self.calls = 0

    def process_result(self, result: Any, parameters: Any = None) -> None:
        pass

    def timer(self) -> float:
        self.calls += 1
        return 0.01


class TimerParamReducer:
    def __init__(self, parameters: Any = None, context: Any = None, state: Any = None) -> None:
        self.seen: list[Any] = []

    def process_result(self, result: Any, parameters: Any) -> None:
        pass

    def timer(self, parameters: Any) -> Any:
        self.seen.append(parameters)
        return "not a number" if len(self.seen) == 1 else 0.02


class BrokenTimerReducer:
    def __init__(self, **kwargs: Any) -> None:
        pass

    def process_result(self, result: Any, parameters: Any) -> None:
        pass

    def timer(self) -> float:
        raise ValueError("timer bug")


class WaitingWorker:
    """An analysis that waits off the core for each event (I/O, a device, a thread pool)."""

    WAIT_S = 0.005

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any = None, tick: bool = False) -> Any:
        time.sleep(self.WAIT_S)
        return event.event_number
