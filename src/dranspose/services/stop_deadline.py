"""A signalled process ends within a bounded time, whatever its stop is stuck in.

Once a process was asked to stop (SIGINT, SIGTERM), :func:`arm` starts a watchdog that needs no
Python thread (``faulthandler``): ``grace_s`` later a process still running prints every
thread's stack to stderr (where it was stuck) and exits with status 1. A stop stuck in a call
that never returns, or a thread that never ends and keeps the interpreter from exiting, must
not leave a process behind: Kubernetes kills it after 30 s, but a supervisor or a benchmark
killed outright has no one to do that.
"""

from __future__ import annotations

import faulthandler

#: seconds a signalled process has to stop cleanly (its data loop, threads, HTTP server and
#: its graceful shutdown, the user's close hook)
STOP_GRACE_S = 15.0

_armed = False


def armed() -> bool:
    """Whether this process was asked to stop (a signal's handler armed the deadline)."""
    return _armed


def arm(grace_s: float = STOP_GRACE_S) -> bool:
    """Start the watchdog, once per process (a later call does not move the deadline);
    returns whether this call started it."""
    global _armed
    if _armed:
        return False
    _armed = True
    faulthandler.dump_traceback_later(grace_s, exit=True)
    return True
