"""ZeroMQ's I/O threads yield the core to the data loops (Linux: ``SCHED_BATCH``).

Every message a component sends or receives passes through an I/O thread of its ZeroMQ
context, which sleeps between messages. Woken under the normal policy, such a thread preempts
whatever runs on its core: on a loaded host that is usually a data loop in the middle of a pass,
which then waits for the core with its pass half done (two workers at 30 kHz on two cores:
each loop preempted 500-650 times a second). A ``SCHED_BATCH`` thread woken does not preempt:
it runs when a core comes free, on a loaded host at the next blocking call of a loop (its poll),
and then moves what queued meanwhile in one go. On an idle core it runs at once, so nothing
waits where the host has time. The policy only ever lowers a thread's claim: it needs no
privilege, and the thread's nice value (its share of a busy core) is kept.
"""

from __future__ import annotations

import logging
import os

import zmq

log = logging.getLogger(__name__)


def yield_to_data_loops(ctx: zmq.Context | None = None) -> bool:
    """Start the I/O threads of ``ctx`` (default: ``zmq.Context.instance()``, the one the
    components use) under ``SCHED_BATCH``. Only threads started afterwards take it: call it
    before the context's first socket. Returns False, changing nothing, where the platform or
    libzmq has no such policy."""
    policy = getattr(os, "SCHED_BATCH", None)
    option = getattr(zmq, "THREAD_SCHED_POLICY", None)
    if policy is None or option is None:
        return False
    context = ctx if ctx is not None else zmq.Context.instance()
    try:
        context.set(option, policy)
    except zmq.ZMQError as exc:  # a libzmq built without thread scheduling options
        log.debug("ZeroMQ I/O threads keep the normal policy: %s", exc)
        return False
    return True
