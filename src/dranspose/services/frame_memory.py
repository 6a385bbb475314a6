"""Keep the memory of freed frames for the next ones (glibc's allocator, set once per process).

libzmq allocates every received message's buffer with ``malloc``. glibc serves a request of
2 MB either from a fresh ``mmap`` (each page faulted in and zeroed, then unmapped on ``free``)
or from an arena whose free top is returned to the kernel past a trim threshold (128 kB by
default): either way a detector frame's buffer is new memory, page by page, for every frame.
:func:`keep_frame_buffers` raises both thresholds, so buffers up to :data:`MMAP_THRESHOLD` come
from the arenas and up to :data:`TRIM_THRESHOLD` of freed memory is kept for reuse. Measured
on 2 MB frames through the whole pipeline (2 workers, 2 cores): 1.1-1.2x the events per second.

The price: a process keeps up to ``TRIM_THRESHOLD`` of freed memory mapped after a burst (the
in-flight data is bounded per worker by the flow control's memory bound, 256 MB by default).
A process started with glibc malloc tunables in its environment (``GLIBC_TUNABLES`` naming
``glibc.malloc``, or ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_``) keeps those.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Mapping

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 256 << 20
ENV_TUNABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def operator_tuned(environ: Mapping[str, str] = os.environ) -> bool:
    """The environment sets glibc malloc tunables of its own: they win."""
    return "glibc.malloc." in environ.get("GLIBC_TUNABLES", "") or any(k in environ for k in ENV_TUNABLES)


def keep_frame_buffers() -> bool:
    """Set the thresholds (see the module text); True when they were set. A no-op returning
    False on other C libraries and when the operator tuned malloc already."""
    if platform.libc_ver()[0] != "glibc" or operator_tuned():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not ok:
        log.debug("mallopt refused the frame buffer thresholds; glibc defaults stay")
    return ok
