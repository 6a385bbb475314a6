"""Starting and stopping the component processes of ``dranspose combined``.

Each child gets a process group of its own (a Ctrl-C in the terminal reaches only the
launcher, which stops the components in order) but stays in the launcher's session. Where
the kernel groups processes by session for scheduling (``kernel.sched_autogroup_enabled``, on
in many distributions' kernels), one session per component made each a scheduling group of
its own, sharing the cores group by group instead of thread by thread: on two busy cores that
raised the p99 latency at 80% load by a third or more (docs/performance.md, *Scheduling groups*).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from dranspose.services import parent_watch

log = logging.getLogger(__name__)


@dataclass
class Supervisor:
    """Child processes started with ``python -m dranspose.cli ...``; stopped in reverse order."""

    log_level: str = "INFO"
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a component; call from the thread that lives as long as this process (the
        main thread): the child ends when that thread does (services/parent_watch.py)."""
        cmd = [sys.executable, "-m", "dranspose.cli", "--log-level", self.log_level, *args]
        env = dict(self.env, **{parent_watch.ENV: str(os.getpid())})
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, process_group=0)
        self.procs.append((name, proc))
        log.debug("started %s (pid %d): %s", name, proc.pid, " ".join(cmd))
        return proc

    def exited(self) -> list[tuple[str, int]]:
        """Children that ended (name, exit code)."""
        return [(name, p.returncode) for name, p in self.procs if p.poll() is not None]

    def stop_all(self, timeout: float = 8.0) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for name, proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                proc.kill()
                proc.wait()
