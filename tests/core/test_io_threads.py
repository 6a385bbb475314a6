"""ZeroMQ's I/O threads run under SCHED_BATCH in the CLI's processes (services/io_threads.py)."""

from __future__ import annotations

import glob
import os
import time

import pytest
import zmq

from dranspose.local.supervisor import Supervisor
from dranspose.services import io_threads
from dranspose.transport.sockets import free_tcp_port
from tests.paths import ROOT

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")


def _zmq_threads(pid: int | str = "self") -> dict[int, str]:
    """ZeroMQ's background threads of process ``pid``: thread id -> name."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as fh:
                name = fh.read().strip()
        except OSError:
            continue
        if name.startswith("ZMQbg/"):
            out[int(task.rsplit("/", 1)[1])] = name
    return out


def _policies(pid: int | str, expected: int, wait_s: float = 10.0) -> dict[str, int]:
    """The policy of each of ZeroMQ's threads of ``pid`` by name, once it has an I/O thread and
    all are under ``expected``, or as they are after ``wait_s`` (libzmq names and sets up each
    thread from inside it, just after it starts)."""
    deadline = time.monotonic() + wait_s
    while True:
        policies = {name: os.sched_getscheduler(tid) for tid, name in _zmq_threads(pid).items()}
        started = any(name.startswith("ZMQbg/IO") for name in policies)
        if (started and set(policies.values()) == {expected}) or time.monotonic() > deadline:
            return policies
        time.sleep(0.01)


def _started(ctx: zmq.Context) -> zmq.Socket:
    """``ctx`` started: its first socket (which starts its threads)."""
    sock = ctx.socket(zmq.PULL)
    sock.bind("tcp://127.0.0.1:*")
    return sock


def test_a_context_asked_first_starts_its_io_threads_batch() -> None:
    ctx = zmq.Context()
    assert io_threads.yield_to_data_loops(ctx) is True
    sock = _started(ctx)
    try:
        assert _policies("self", os.SCHED_BATCH)["ZMQbg/IO/0"] == os.SCHED_BATCH
    finally:
        sock.close(0)
        ctx.term()


def test_a_context_not_asked_keeps_the_normal_policy() -> None:
    ctx = zmq.Context()
    sock = _started(ctx)
    try:
        policies = {name: os.sched_getscheduler(tid) for tid, name in _zmq_threads().items()}
        assert policies.get("ZMQbg/IO/0") == os.SCHED_OTHER, policies  # this process asked no context
    finally:
        sock.close(0)
        ctx.term()


@pytest.mark.e2e
def test_components_started_by_the_cli_run_their_io_threads_batch(redis_url: str) -> None:
    """As deployed: a worker and an ingester, each its own ``dranspose`` process."""
    sup = Supervisor(log_level="WARNING")
    sup.env.update(REDIS_URL=redis_url, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    try:
        procs = [
            sup.spawn("worker", "worker", "-n", "batchcheck"),
            sup.spawn("ingester", "ingester", "-c", "ZmqPullSingleIngester", "-u", f"tcp://127.0.0.1:{free_tcp_port()}", "-n", "det"),
        ]
        for proc in procs:
            policies = _policies(proc.pid, os.SCHED_BATCH, wait_s=60.0)  # the process starts meanwhile
            assert proc.poll() is None, sup.exited()
            assert "ZMQbg/IO/0" in policies and set(policies.values()) == {os.SCHED_BATCH}, policies
            main = os.sched_getscheduler(proc.pid)  # the data loop's thread keeps the normal policy
            assert main == os.SCHED_OTHER
    finally:
        sup.stop_all()
