"""A component started by ``dranspose combined`` ends with it, even when the supervising process
is killed outright (SIGKILL, the OOM killer) and cannot stop its children itself.

The supervisor names itself in the child's environment (:data:`ENV`); the child, at start, asks
Linux to send it SIGTERM when its parent ends (``prctl(PR_SET_PDEATHSIG)``), which stops it as
a Ctrl-C would (scan state and reports as on any stop). The request follows the parent
*thread*: the supervisor spawns from its main thread, which lives as long as it does. Anywhere
else (another OS, a process started by anything but the supervisor) nothing changes. A program
that is not ours (the private ``redis-server``) is started through :func:`ending_with_me`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import MutableMapping

log = logging.getLogger(__name__)

ENV = "DRANSPOSE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def end_with_supervisor(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Called once at start: if :data:`ENV` names this process's supervisor, end (SIGTERM)
    when it does; returns whether that is arranged. The variable is removed from ``environ``
    so that processes this one starts do not take it for theirs. A supervisor that ended
    before the request was made ends this process at once."""
    raw = environ.pop(ENV, None)
    if raw is None:
        return False
    try:
        supervisor = int(raw)
    except ValueError:
        log.warning("%s=%r is not a process id; this process does not end with its supervisor", ENV, raw)
        return False
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


# Run by ``python -c`` with argv: the supervisor's pid, then the program (a path, or a name found
# on PATH) and its arguments: the
# same request as end_with_supervisor (it survives exec), then the program in this process.
_EXEC_ENDING_WITH_PARENT = """\
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl({option}, int(signal.SIGTERM), 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execvp(sys.argv[2], sys.argv[2:])
""".format(option=_PR_SET_PDEATHSIG)


def ending_with_me(argv: list[str]) -> list[str]:
    """The command that runs ``argv`` (a program path and its arguments) as a process that ends
    (SIGTERM) when the calling thread's process does; start it from the main thread."""
    return [sys.executable, "-c", _EXEC_ENDING_WITH_PARENT, str(os.getpid()), *argv]
