"""Running one service process until SIGINT/SIGTERM, and never much longer."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Callable

from dranspose.services import stop_deadline
from dranspose.services.component import (
    Component,
    install_log_forwarding,
    remove_log_forwarding,
    run_until_stopped,
)

log = logging.getLogger(__name__)


def stop_on_signals(stop: Callable[[], None], grace_s: float = stop_deadline.STOP_GRACE_S) -> None:
    """From the main thread: SIGINT and SIGTERM call ``stop`` (a clean stop) and arm a
    watchdog that needs no Python thread (``faulthandler``): ``grace_s`` later a process still
    running prints every thread's stack and exits (status 1: ``services/stop_deadline.py``). A
    second signal exits at once."""
    signalled: list[int] = []

    def _on_signal(signum: int, frame: Any) -> None:
        if signalled:
            os.write(2, b"dranspose: second signal; exiting now\n")
            os._exit(128 + signum)
        signalled.append(signum)
        stop_deadline.arm(grace_s)
        log.info("%s: stopping (at most %.0f s, then every thread's stack on stderr and exit)",
                 signal.Signals(signum).name, grace_s)
        stop()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def serve(component: Component) -> None:
    """Run ``component``'s data loop in this (main) thread; a signal stops it cleanly (see
    :func:`stop_on_signals`). The process's warnings and errors are forwarded to the shared
    log stream."""
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(component.stop)
    install_log_forwarding(component.settings, f"{component.kind}:{component.name}")
    try:
        run_until_stopped(component, component.run)
    finally:
        remove_log_forwarding()
