"""The control feed read by the data loop itself: a real redis-server, its connection's socket
polled beside a ZeroMQ socket as the data loops poll it; Redis stopped and restarted under it,
a connection gone silent, hostile entries."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest
import redis
import zmq

from dranspose.local.redis_server import RedisServer
from dranspose.services import control_feed
from dranspose.services.control_feed import ControlFeed
from dranspose.store.keys import Keys
from dranspose.transport import control

pytestmark = pytest.mark.e2e
KEYS = Keys()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def open_loop(server: RedisServer) -> Iterator[Callable[[], Loop]]:
    """``open_loop()``: a feed started on the test's Redis now (after the test's own set-up),
    polled as a data loop polls it; closed at teardown."""
    made: list[Loop] = []

    def start() -> Loop:
        feed = ControlFeed(server.url, KEYS, KEYS.assigned, lambda category, message, *args: ERRORS.append((category, message % args)), "test")
        feed.start()
        made.append(Loop(feed))
        return made[-1]

    yield start
    for polled in made:
        polled.close()


@pytest.fixture
def loop(open_loop: Callable[[], Loop]) -> Loop:
    """A feed started before the test, polled as a data loop polls it."""
    return open_loop()


ERRORS: list[tuple[str, str]] = []  # what the feeds counted (cleared by each test that reads it)


class Loop:
    """Polls the feed as a data loop does: one poller for its life, a ZeroMQ socket beside
    the feed's descriptor (which must stay valid across reconnections)."""

    def __init__(self, feed: ControlFeed) -> None:
        self.feed = feed
        self.other = zmq.Context.instance().socket(zmq.PULL)
        self.poller = zmq.Poller()
        self.poller.register(self.other, zmq.POLLIN)
        self.poller.register(feed.fd, zmq.POLLIN)

    def take(self, until: float = 5.0, want: int = 1, events: int = 0) -> list[tuple[str, Any]]:
        """What the feed delivers within ``until`` seconds, until ``want`` messages and
        ``events`` assigned events came."""
        got: list[tuple[str, Any]] = []
        deadline = time.monotonic() + until
        while (len(got) < want or len(_events(got)) < events) and time.monotonic() < deadline:
            ready = dict(self.poller.poll(50))
            if self.feed.fd in ready:
                got.extend(self.feed.take())
        return got

    def readable(self) -> bool:
        return self.feed.fd in dict(self.poller.poll(100))

    def close(self) -> None:
        self.other.close(linger=0)
        self.feed.close()


def _announce(client: redis.Redis, uuid: str) -> None:
    msg = control.MappingAnnounced(uuid, n_workers=2)
    client.set(KEYS.mapping(), control.encode_mapping(msg))
    client.xadd(KEYS.updates(), {control.UPDATE_FIELD: control.encode_update(msg)})


def _assign(client: redis.Redis, uuid: str, events: list[int]) -> None:
    batch = control.encode_assignment(uuid, [(e, {"det": ("w0",)}) for e in events])
    client.xadd(KEYS.assigned(uuid), {control.ASSIGNED_FIELD: batch})


def _events(messages: list[tuple[str, Any]]) -> list[int]:
    return [e for kind, batches in messages if kind == "assigned" for b in batches for e, _t in b.events]


def test_updates_then_the_new_mappings_assignments_in_order(server: RedisServer, loop: Loop) -> None:
    client = redis.Redis.from_url(server.url)
    assert loop.take(until=0.3) == []  # nothing written: nothing readable
    _announce(client, "m1")
    got = loop.take()
    assert [(k, m.uuid) for k, m in got] == [("mapping", "m1")]
    for start in (0, 3, 6):
        _assign(client, "m1", [start, start + 1, start + 2])
    got = loop.take(events=9)
    assert _events(got) == list(range(9))
    assert all(b.mapping == "m1" for _k, batches in got for b in batches)


def test_a_process_that_starts_during_a_scan_rejoins_it(server: RedisServer, open_loop: Callable[[], Loop]) -> None:
    client = redis.Redis.from_url(server.url)
    _announce(client, "m2")
    _assign(client, "m2", [0, 1])
    loop = open_loop()
    got = loop.take(want=2, events=2)
    assert [k for k, _m in got] == ["mapping_resumed", "assigned"]
    assert got[0][1].uuid == "m2" and _events(got) == [0, 1]
    _assign(client, "m2", [2])  # and it goes on reading that scan's assignments
    assert _events(loop.take(events=1)) == [2]


def test_hostile_entries_are_counted_and_the_feed_goes_on(server: RedisServer, loop: Loop) -> None:
    client = redis.Redis.from_url(server.url)
    ERRORS.clear()
    _announce(client, "m3")
    assert [k for k, _m in loop.take()] == ["mapping"]
    client.xadd(KEYS.updates(), {control.UPDATE_FIELD: b"\x80 not json"})
    client.xadd(KEYS.assigned("m3"), {control.ASSIGNED_FIELD: b'{"mapping": 5}'})
    client.xadd(KEYS.assigned("m3"), {"unrelated": b"x"})
    _assign(client, "m3", [7])
    assert _events(loop.take(events=1)) == [7]
    assert [c for c, _m in ERRORS] == ["control", "control", "control"]


def test_redis_restarted_the_heartbeat_reconnects_and_reading_goes_on(server: RedisServer, loop: Loop) -> None:
    _announce(redis.Redis.from_url(server.url), "m4")
    assert [k for k, _m in loop.take()] == ["mapping"]
    server.stop()
    assert loop.take(until=1.0) == []  # the closed connection: read once, dropped
    assert not loop.readable()  # the loop does not spin on a dead connection
    loop.feed.maintain()  # the heartbeat, with Redis still away: no exception, still nothing
    assert loop.feed.reconnects == 0 and not loop.readable()
    with RedisServer(port=server.port) as again:
        loop.feed.maintain()  # the next beat reconnects, behind the same descriptor
        _assign(redis.Redis.from_url(again.url), "m4", [0, 1, 2])  # the new, empty server
        assert _events(loop.take(events=3)) == [0, 1, 2]
        assert loop.feed.reconnects == 1


def test_a_silent_connection_is_replaced(server: RedisServer, open_loop: Callable[[], Loop], monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection whose answers stop coming (a peer gone without closing it): stood in for
    by a server that answers an empty read only after 30 s while the feed expects one within
    0.5 s."""
    monkeypatch.setattr(control_feed, "BLOCK_MS", 30_000)
    monkeypatch.setattr(control_feed, "SILENT_S", 0.5)
    loop = open_loop()
    loop.feed.maintain()  # just sent: nothing to do
    assert loop.feed.reconnects == 0
    time.sleep(0.7)
    assert not loop.readable()
    loop.feed.maintain()  # no answer for longer than SILENT_S: a new connection
    assert loop.feed.reconnects == 1
    client = redis.Redis.from_url(server.url)
    _announce(client, "m5")
    assert [(k, m.uuid) for k, m in loop.take()] == [("mapping", "m5")]
    _assign(client, "m5", [4, 5])
    assert _events(loop.take(events=2)) == [4, 5]


def test_an_answer_not_read_yet_is_no_silence(server: RedisServer, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data loop busy for longer than SILENT_S (a long ``process_event``) leaves its answer
    unread: the heartbeat must not take that for a dead connection."""
    monkeypatch.setattr(control_feed, "SILENT_S", 0.3)
    _announce(redis.Redis.from_url(server.url), "m6")
    time.sleep(0.5)  # the answer came and waits in the socket
    loop.feed.maintain()
    assert loop.feed.reconnects == 0
    assert [(k, m.uuid) for k, m in loop.take()] == [("mapping", "m6")]


def test_a_scan_replaced_within_one_answer_is_no_longer_followed(
    server: RedisServer, open_loop: Callable[[], Loop], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer that holds a new scan's announcement and, after it, the previous scan's last
    assignments (written before the announcement; Redis lists the streams in the order asked)."""
    monkeypatch.setattr(control_feed, "BLOCK_MS", 100)
    client = redis.Redis.from_url(server.url)
    loop = open_loop()
    _announce(client, "m7")
    assert [(k, m.uuid) for k, m in loop.take()] == [("mapping", "m7")]
    time.sleep(0.3)  # the read in flight answers empty; not taken yet: no read is waiting
    _assign(client, "m7", [9])
    _announce(client, "m8")
    assert loop.feed.take() == []  # the empty answer; the next read finds both streams at once
    got = loop.take()
    assert [(k, m.uuid) for k, m in got] == [("mapping", "m8")]  # m7's batch came after it: dropped
    _assign(client, "m7", [10])  # and the old scan's stream is not read again
    _assign(client, "m8", [0])
    assert _events(loop.take(events=1)) == [0]
    assert loop.take(until=0.3) == []


def test_an_answer_of_the_wrong_shape_is_counted_and_reading_goes_on(server: RedisServer, loop: Loop) -> None:
    """Redis is trusted to answer as Redis does; if it does not, the data loop goes on."""
    client = redis.Redis.from_url(server.url)
    ERRORS.clear()
    _announce(client, "m9")
    assert [k for k, _m in loop.take()] == ["mapping"]
    conn = loop.feed._conn
    real = conn.read_response
    conn.read_response = lambda: [[b"not", b"entries"], 7]  # as a broken server might answer
    try:
        assert loop.feed.take() == []
    finally:
        conn.read_response = real
    assert [c for c, _m in ERRORS] == ["control"] and not loop.readable()
    loop.feed.maintain()
    _assign(client, "m9", [3])
    assert _events(loop.take(events=1)) == [3]
