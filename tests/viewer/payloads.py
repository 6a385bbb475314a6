"""Payload classes of the viewer/metrics tests."""

from __future__ import annotations

import time
from typing import Any


class SlowReducer:
    """process_result takes 2 s (user code that hangs for a while)."""

    def __init__(self, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"count": 0}

    def process_result(self, result: Any, parameters: Any = None) -> None:
        time.sleep(2.0)
        self.publish["count"] += 1
