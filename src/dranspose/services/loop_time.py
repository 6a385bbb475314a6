"""How long a thread ran on a core and how long it waited for one (Linux ``schedstat``).

The kernel keeps both per thread (``/proc/self/task/<tid>/schedstat``: nanoseconds on a CPU,
nanoseconds runnable but waiting for a CPU, time slices). A component publishes them for its
data loop: a loop that waits for a core about as long as it runs is on a node whose cores are
oversubscribed, and its events wait for the scheduler, not for dranspose (README,
Performance). Read by the heartbeat thread; reading costs one small file read. A worker's data
loop also reads its own waits (:class:`CoreWaits`) to leave them out of its busy time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CoreTime:
    """Seconds one thread spent on a core and runnable waiting for one, since it started."""

    on_core_s: float
    waiting_for_core_s: float

    def waiting_share(self) -> float | None:
        """The share of its runnable time the thread waited for a core (None before it ran)."""
        total = self.on_core_s + self.waiting_for_core_s
        return self.waiting_for_core_s / total if total > 0 else None

    def as_state(self) -> dict[str, float]:
        """The advertised form (a component's ``data_loop`` state)."""
        return {"on_core_s": round(self.on_core_s, 3), "waiting_for_core_s": round(self.waiting_for_core_s, 3)}

    @classmethod
    def from_state(cls, state: Any) -> CoreTime | None:
        """Read back an advertised ``data_loop`` state (it comes through Redis: anything but
        a dict of two numbers, e.g. from an older component or without schedstat, is None)."""
        if not isinstance(state, dict):
            return None
        on, waiting = state.get("on_core_s"), state.get("waiting_for_core_s")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (on, waiting)):
            return None
        return cls(float(on), float(waiting))


def _schedstat_seconds(raw: bytes) -> tuple[float, float]:
    """(seconds on a core, seconds waiting for one) from a ``schedstat`` file's text (its
    first two fields, nanoseconds); ValueError or IndexError when it is not such text."""
    fields = raw.split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


def core_time(tid: int) -> CoreTime | None:
    """The kernel's counts for thread ``tid`` of this process; None where the kernel does not
    keep them (not Linux, no schedstat) or the thread is gone."""
    try:
        with open(f"/proc/self/task/{int(tid)}/schedstat", "rb") as f:
            return CoreTime(*_schedstat_seconds(f.read()))
    except (OSError, ValueError, IndexError):
        return None


class CoreWaits:
    """Seconds the thread that first reads this object has waited for a core since it started,
    as the kernel counts them (``/proc/thread-self/schedstat``, opened at that first reading and
    kept open: a reading is one ``pread``, about 1.5 µs). Read it in that thread only. Reads
    0.0 where the kernel keeps no count (not Linux, no schedstat): nothing is left out then."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._opened = False

    def read(self) -> float:
        if not self._opened:
            self._opened = True
            try:
                self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            except OSError:
                self._fd = None
        if self._fd is None:
            return 0.0
        try:
            return _schedstat_seconds(os.pread(self._fd, 64, 0))[1]
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def describe(state: Any) -> str:
    """``data loop 1.2 s on a core, 0.8 s waiting for one (40%)`` from an advertised
    ``data_loop`` state; empty for anything else (an older component, no schedstat)."""
    spent = CoreTime.from_state(state)
    if spent is None:
        return ""
    share = spent.waiting_share()
    shown = f" ({share:.0%})" if share is not None else ""
    return f"data loop {spent.on_core_s:.1f} s on a core, {spent.waiting_for_core_s:.1f} s waiting for one{shown}"
