"""A component started by ``dranspose combined`` (or by the pipeline benchmark) ends with it, even
when the supervising process is killed outright (SIGKILL, the OOM killer) and cannot stop its
children itself.

The supervisor names itself in the child's environment (:data:`ENV`); the child, at start, asks
Linux to send it SIGTERM when its parent ends (``prctl(PR_SET_PDEATHSIG)``), which stops it as
a Ctrl-C would (scan state and reports as on any stop). The request follows the parent
*thread*: the supervisor spawns from its main thread, which lives as long as it does. A daemon
thread also looks every :data:`POLL_S` whether the process was handed to another parent, and
sends the same SIGTERM if the process is not stopping a poll later (a controller once kept
running for over 20 s after its benchmark was killed). Anywhere else (another OS, a process
started by anything but the supervisor) nothing changes. A program that is not ours (the
private ``redis-server``) is started through :func:`ending_with_me` (there the kernel's request
alone: it survives ``exec``, the thread does not).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import MutableMapping

from dranspose.services import stop_deadline

log = logging.getLogger(__name__)

ENV = "DRANSPOSE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1
POLL_S = 1.0  # how often the fallback thread looks at the parent


def end_with_supervisor(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Called once at start: if :data:`ENV` names this process's supervisor, end (SIGTERM)
    when it does; returns whether that is arranged. The variable is removed from ``environ``
    so that processes this one starts do not take it for theirs."""
    raw = environ.pop(ENV, None)
    if raw is None:
        return False
    try:
        supervisor = int(raw)
    except ValueError:
        log.warning("%s=%r is not a process id; this process does not end with its supervisor", ENV, raw)
        return False
    return _follow(supervisor)


def _follow(supervisor: int) -> bool:
    """Ask Linux for SIGTERM when this process's parent ends; a ``supervisor`` that ended before
    the request was made (this process's parent is another by now) ends this process at once."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.warning("cannot ask to end with the supervisor: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError) as exc:
        log.warning("cannot ask to end with the supervisor: %s", exc)
        return False
    if os.getppid() != supervisor:  # it ended before the request: nothing would tell us now
        os.kill(os.getpid(), signal.SIGTERM)
        return True
    threading.Thread(target=_watch, args=(supervisor,), name="parent-watch", daemon=True).start()
    return True


def _watch(supervisor: int, poll_s: float = POLL_S) -> None:
    """Fallback thread: once this process has another parent (the supervisor ended) and, a poll
    later, is still not stopping (no signal handler armed the stop deadline), SIGTERM it, as
    the kernel's parent-death signal would have. Not when that signal came: a second one
    would end the process at once instead of cleanly (``services/runner.py``)."""
    while os.getppid() == supervisor:
        time.sleep(poll_s)
    time.sleep(poll_s)
    if stop_deadline.armed():
        return
    log.warning("the supervisor (pid %d) ended and no signal came; stopping", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def ending_with_me(argv: list[str]) -> list[str]:
    """The command that runs ``argv`` (a program, as a path or a name on PATH, and its
    arguments) as a process that ends (SIGTERM) when this one does: this module run as a
    script makes the same request, which survives ``exec``, then becomes the program. Start it
    from the main thread."""
    return [sys.executable, "-m", __name__, str(os.getpid()), *argv]


if __name__ == "__main__":  # ending_with_me's wrapper: supervisor pid, program, its arguments
    _follow(int(sys.argv[1]))
    os.execvp(sys.argv[2], sys.argv[2:])
