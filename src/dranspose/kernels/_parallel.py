"""Thread-pool facts shared by the kernels."""

from __future__ import annotations

import numba


def pool_size() -> int:
    """Threads in Numba's pool (``NUMBA_NUM_THREADS``): the number of per-thread scratch rows.

    ``numba.get_thread_id()`` is below this inside parallel regions.
    """
    return max(1, int(getattr(numba.config, "NUMBA_NUM_THREADS", 1)))
