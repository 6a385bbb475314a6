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


def _policies_of_new_threads(ctx: zmq.Context) -> dict[str, int]:
    """Start ``ctx`` (its first socket) and return the policy of each thread it started, by name."""
    before = set(_zmq_threads())
    sock = ctx.socket(zmq.PULL)
    sock.bind("tcp://127.0.0.1:*")
    try:
        deadline = time.monotonic() + 5
        while True:  # libzmq names each thread from inside it, just after it starts
            new = {tid: name for tid, name in _zmq_threads().items() if tid not in before}
            if any(name.startswith("ZMQbg/IO") for name in new.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return {name: os.sched_getscheduler(tid) for tid, name in new.items()}
    finally:
        sock.close(0)
        ctx.term()


def test_a_context_asked_first_starts_its_io_threads_batch() -> None:
    ctx = zmq.Context()
    assert io_threads.yield_to_data_loops(ctx) is True
    policies = _policies_of_new_threads(ctx)
    assert "ZMQbg/IO/0" in policies, policies
    assert set(policies.values()) == {os.SCHED_BATCH}, policies


def test_a_context_not_asked_keeps_the_normal_policy() -> None:
    policies = _policies_of_new_threads(zmq.Context())
    assert "ZMQbg/IO/0" in policies, policies
    assert set(policies.values()) == {os.SCHED_OTHER}, policies


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
            deadline = time.monotonic() + 30
            while not any(name.startswith("ZMQbg/IO") for name in _zmq_threads(proc.pid).values()):
                assert proc.poll() is None, sup.exited()
                assert time.monotonic() < deadline, "no ZeroMQ I/O thread started"
                time.sleep(0.1)
            threads = _zmq_threads(proc.pid)
            policies = {name: os.sched_getscheduler(tid) for tid, name in threads.items()}
            assert set(policies.values()) == {os.SCHED_BATCH}, policies
            main = os.sched_getscheduler(proc.pid)  # the data loop's thread keeps the normal policy
            assert main == os.SCHED_OTHER
    finally:
        sup.stop_all()
