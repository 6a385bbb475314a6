"""No full garbage collection in the middle of a scan.

A full (oldest-generation) collection walks every tracked object of the process: with
numpy, pydantic, FastAPI and the user's imports that is 30-100 ms, during which the data loop
stands still and every event in flight waits (one such pause put a 100 ms tail on a 2 kHz
scan). :func:`settle` runs that collection *between* scans (when a component applies a new
mapping) and freezes what survived, so the collections the interpreter starts during the
scan only walk objects made since: they stay short.

Objects frozen by one settle that later become cyclic garbage are freed by the next settle
(it unfreezes first); objects freed by reference counting are freed at once, frozen or not.

Only a process that runs components as its job does this: the ``dranspose`` command calls
:func:`enable`. In anybody else's process (a notebook, a test run, replay) :func:`settle`
does nothing and the interpreter's collector is left as it is.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

log = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds: components sharing a process (embedded mode) settle it once

_lock = threading.Lock()
_enabled = False
_last = -1.0e9  # monotonic time of the last settle
_last_ms: float | None = None  # how long it took
_frozen = 0  # objects it froze (counted once: gc.get_freeze_count() walks them all)
_paused = 0  # paused() sections open (in any thread)
_resume = False  # the collector was on when the first of them opened


def enable(on: bool = True) -> None:
    """Let :func:`settle` act in this process (the process runs components as its job)."""
    global _enabled
    _enabled = on


def settle() -> float:
    """Collect everything, then freeze the survivors; returns the seconds it took (0.0 when
    not enabled, or when another component of this process settled it less than
    ``MIN_INTERVAL`` ago)."""
    global _last, _last_ms, _frozen
    if not _enabled:
        return 0.0
    with _lock:
        if time.monotonic() - _last < MIN_INTERVAL:
            return 0.0
        t0 = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        took = time.perf_counter() - t0
        _last, _last_ms, _frozen = time.monotonic(), round(took * 1e3, 1), gc.get_freeze_count()
    log.debug("full garbage collection between scans: %.1f ms, %d objects frozen", took * 1e3, _frozen)
    return took


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection while a large structure is built (a compiled map of a million
    events and its tables): everything it makes is kept, so collections meanwhile only walk
    it again and again (a third of the compile time). Process-wide while any section is open;
    the collector's previous state comes back when the last one closes. Acts only where
    :func:`enable` was called, like :func:`settle`."""
    global _paused, _resume
    if not _enabled:
        yield
        return
    with _lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()


def status() -> dict[str, Any]:
    """For the component's state: whether it acts, objects the last settle froze, its ms
    (cheap: the heartbeat calls it twice a second)."""
    return {"enabled": _enabled, "frozen": _frozen, "last_ms": _last_ms}
