"""A payload whose results carry its own class (admitted) and, on request, a foreign one."""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Any


@dataclass
class Peak:
    x: float
    y: float


class Worker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def process_event(self, event: Any, parameters: Any = None, tick: bool = False) -> Any:
        if event.event_number == 3:
            return {"foreign": fractions.Fraction(1, 3)}  # a class of another module: refused
        return {"peak": Peak(float(event.event_number), 2.0)}


class Reducer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.peaks: list[Peak] = []
        self.publish: dict[str, Any] = {}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        self.peaks.append(result.payload["peak"])
