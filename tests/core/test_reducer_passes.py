"""The reducer's data loop reads results that come fast in few passes (a short wait lets
several queue up) and results that come slowly one per pass, at once. Real Redis, a real
reducer loop, a real ZeroMQ PUSH socket sending result messages as a worker does."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Iterator

import pytest
import zmq

from dranspose.config import Settings
from dranspose.event import ResultData
from dranspose.services.reducer import Reducer
from dranspose.transport import results
from tests.waiting import poll_until

FAST = 2000


@pytest.fixture
def reducer(redis_url: str) -> Iterator[Reducer]:
    red = Reducer("reducer", Settings(redis_url=redis_url, reducer_url="tcp://127.0.0.1:0", heartbeat_interval=0.2), http_port=None)
    red.start()
    loop = threading.Thread(target=red.run, name="reducer-loop", daemon=True)
    loop.start()
    try:
        yield red
    finally:
        red.stop()
        loop.join(5)
        red.join_background()


def _result(event: int) -> list[bytes]:
    rd = ResultData(event_number=event, worker="w0", parameters_hash=None, payload={"event": event})
    return [bytes(f) for f in results.encode(rd, None)]


def test_fast_results_share_passes_and_slow_ones_do_not_wait(reducer: Reducer) -> None:
    assert reducer.url is not None
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.connect(reducer.url)
    try:
        # ~8 kHz in single-result messages, as two workers behind a paced detector send them
        for first in range(0, FAST, 5):
            for event in range(first, first + 5):
                push.send_multipart(_result(event))
            time.sleep(0.0005)
        poll_until(lambda: reducer.total_processed == FAST, "every fast result processed", 30)
        fast_passes = reducer.result_passes
        # a pass about every 2 ms (~17 results at 8 kHz: ~120 passes); a pass per message or per
        # send burst, as without the wait: 400-2,000
        assert fast_passes <= FAST / 8, f"{fast_passes} passes for {FAST} results"

        time.sleep(0.3)  # idle: the loop forgets the fast rate
        took = []
        for k in range(20):  # 50 Hz: each result read in a pass of its own, without a wait
            done = reducer.total_processed + 1
            t0 = time.perf_counter()
            push.send_multipart(_result(FAST + k))
            poll_until(lambda: reducer.total_processed >= done, "a slow result processed", 10, interval=0.0002)
            took.append(time.perf_counter() - t0)
            time.sleep(0.02)
        assert reducer.result_passes - fast_passes == 20
        # a wait would be up to the coalescing linger (2 ms) for every result
        assert statistics.median(took) < 0.002, took
    finally:
        push.close(0)
