"""One polling wait for end-to-end tests: a condition read over HTTP, Redis or a file."""

from __future__ import annotations

import time
from typing import Any, Callable

import httpx

#: what a condition may raise while the thing it reads is not up yet (the wait goes on)
TRANSIENT = (httpx.HTTPError, KeyError, ValueError)


def poll_until(
    cond: Callable[[], Any], what: str, timeout: float, *, interval: float = 0.1,
    context: Callable[[], str] = lambda: "",
) -> Any:
    """Call ``cond`` until it returns a true value, which is returned; :data:`TRANSIENT`
    errors count as not yet. After ``timeout`` s: AssertionError naming ``what``, followed by
    ``context()`` (e.g. the components' logs)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
            if value:
                return value
        except TRANSIENT:
            pass
        if time.monotonic() > deadline:
            detail = context()
            raise AssertionError(f"{what}: not reached in {timeout} s" + (f"\n{detail}" if detail else ""))
        time.sleep(interval)
