"""Freed frame buffers are reused (glibc malloc thresholds set by the CLI's processes)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from dranspose.services import frame_memory

# Frames as a process sees them: one thread (libzmq's I/O thread) allocates 2 MB buffers and
# touches every page, another (the data loop) holds a few in flight and frees them in order.
# Prints whether the thresholds were set and the page faults per buffer once the heap is sized.
CHURN = """
import collections, queue, resource, sys, threading
from dranspose.services import frame_memory
applied = frame_memory.keep_frame_buffers() if sys.argv[1] == "keep" else None
def faults_per_buffer(n=100, in_flight=8):
    q = queue.Queue(maxsize=in_flight)
    def receive():
        for _ in range(n):
            b = bytearray(2 << 20)
            b[::4096] = b"x" * 512
            q.put(b)
        q.put(None)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = threading.Thread(target=receive)
    t.start()
    held = collections.deque()
    while (b := q.get()) is not None:
        held.append(b)
        if len(held) > in_flight:
            held.popleft()
    held.clear()
    t.join()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n
faults_per_buffer()  # sizes the heap
print(applied, faults_per_buffer())
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's (other C libraries: a no-op)")


def faults_per_buffer(mode: str, **env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and k not in frame_memory.ENV_TUNABLES}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return out[0], float(out[1])


@pytest.mark.e2e
@glibc_only
def test_kept_buffers_are_not_faulted_in_again() -> None:
    applied, kept = faults_per_buffer("keep")
    _, default = faults_per_buffer("default")
    assert applied == "True"
    assert kept < 2, f"{kept} page faults per reused 2 MB buffer"
    assert default > 4 * max(kept, 1), f"default thresholds: {default} faults per buffer"


@pytest.mark.e2e
@glibc_only
def test_operator_malloc_tunables_win() -> None:
    applied, _ = faults_per_buffer("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert applied == "False"
    applied, _ = faults_per_buffer("keep", MALLOC_MMAP_THRESHOLD_="131072")
    assert applied == "False"


def test_operator_tuned_reads_the_environment() -> None:
    assert not frame_memory.operator_tuned({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"})
    assert frame_memory.operator_tuned({"GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.arena_max=2"})
    assert frame_memory.operator_tuned({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert not frame_memory.operator_tuned({})
