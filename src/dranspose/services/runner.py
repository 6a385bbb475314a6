"""Running one service process until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any

from dranspose.services.component import (
    Component,
    install_log_forwarding,
    remove_log_forwarding,
    run_until_stopped,
)


def serve(component: Component) -> None:
    """Run ``component``'s data loop in this (main) thread; a signal stops it cleanly.
    The process's warnings and errors are forwarded to the shared log stream."""

    def _stop(signum: int, frame: Any) -> None:
        component.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
    install_log_forwarding(component.settings, f"{component.kind}:{component.name}")
    try:
        run_until_stopped(component, component.run)
    finally:
        remove_log_forwarding()
