"""The control feed: the controller's announcements and the current mapping's assignment
batches, read from their Redis streams by the data loop itself (no thread between them).

One ``XREAD BLOCK`` is always in flight on a connection of the feed's own. The data loop polls
that connection's socket beside its ZeroMQ sockets through :attr:`ControlFeed.fd`, a
descriptor that stays the same across reconnections (``dup2`` puts the live socket, or a pipe
that never becomes readable, behind it), and reads a reply only once it has come
(:meth:`ControlFeed.take`): the loop never waits on Redis, no other thread takes the GIL to
hand it over, nothing is pickled on the way. Connecting is the heartbeat thread's job
(:meth:`ControlFeed.maintain`, every beat): a connection that failed, or that stayed silent
although the server answers every ``BLOCK_MS``, is replaced there, and the reads go on from
the last entry seen.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any, Callable

import redis

from dranspose.errors import ControlMessageError
from dranspose.store.keys import Keys
from dranspose.transport import control

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # the server answers an XREAD at least this often (nil when nothing came)
SILENT_S = 5.0  # no answer for this long: the connection is dead, replaced at the next beat

Message = tuple[str, Any]  # (kind, payload) as the components' control handlers take them


class ControlFeed:
    """Control messages for one component, in order. Thread contract: :meth:`take` from the
    data loop only; :meth:`maintain` from the heartbeat thread; :meth:`start` and
    :meth:`close` before and after both."""

    def __init__(
        self, url: str, keys: Keys, assigned_key: Callable[[str], str | None], count_error: Callable[..., None], label: str
    ) -> None:
        # a pool of its own; RESP2: replies as flat lists, and no push messages that could make
        # the socket readable before the XREAD's answer
        self._client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5, protocol=2)
        self._updates = keys.updates()
        self._mapping_key = keys.mapping()
        self._assigned_key = assigned_key
        self._count_error = count_error
        self._label = label
        self._lock = threading.Lock()  # the connection: read by the loop, replaced by the heartbeat
        self._conn: Any = None  # the connection with the XREAD in flight (None: to be connected)
        self._sent_at = 0.0  # monotonic time the XREAD in flight was sent
        self._streams: dict[str, bytes] | None = None  # stream -> last id read (None: not joined yet)
        self._queued: list[Message] = []  # found while joining (a scan under way), taken first
        self.reconnects = 0  # connections replaced after a failure or a silence
        self._ever_connected = False
        self._closed = False
        self._never_r, self._never_w = os.pipe()  # the fd while disconnected: nothing is written and the write end stays open, so it never reads EOF
        self.fd = os.dup(self._never_r)  # what the data loop polls

    def start(self) -> None:
        """Connect and send the first read (a Redis that is away now: the heartbeat retries)."""
        self.maintain()

    def maintain(self) -> None:
        """Heartbeat thread: connect when there is no connection, or the one there stayed silent."""
        if not self._lock.acquire(blocking=False):
            return  # the loop is reading: it works
        try:
            if self._closed:
                return
            if self._conn is not None and (time.monotonic() - self._sent_at < SILENT_S or self._answered()):
                return  # waiting for an answer, or one came and the loop has not read it yet
            if self._conn is not None:
                log.warning("%s: the control stream read got no answer for %.0f s; reconnecting", self._label, SILENT_S)
                self._drop()
            try:
                self._conn = self._client.connection_pool.get_connection()
                if self._streams is None:
                    self._streams = self._join(self._conn)
                self._send_read()
                if self._ever_connected:
                    self.reconnects += 1
                self._ever_connected = True
            except (redis.RedisError, OSError) as exc:
                log.warning("%s: control stream read failed: %s; retrying", self._label, exc)
                self._drop()
        finally:
            self._lock.release()

    def _answered(self) -> bool:
        """Has the answer to the read in flight come (its socket readable)? Asked of the socket,
        not through redis-py, which would move the bytes into its buffer where no poll sees them."""
        poll = select.poll()
        poll.register(self.fd, select.POLLIN)
        return bool(poll.poll(0))

    def _join(self, conn: Any) -> dict[str, bytes]:
        """The streams to follow from now: new updates and, when a mapping is current (a scan
        may be running: this process (re)joins it), all of its assignments."""
        conn.send_command("XREVRANGE", self._updates, "+", "-", "COUNT", 1)
        last = conn.read_response()
        conn.send_command("GET", self._mapping_key)
        current = conn.read_response()
        streams = {self._updates: last[0][0] if last else b"0-0"}
        if current is not None:
            try:
                info = control.decode_mapping(current)
            except ControlMessageError as exc:
                self._count_error("control", "current mapping ignored: %s", exc)
            else:
                self._queued.append(("mapping_resumed", info))
                key = self._assigned_key(info.uuid)
                if key:
                    streams[key] = b"0-0"
        return streams

    def _send_read(self) -> None:
        """Send the next XREAD (not blocking while joined messages wait to be taken) and put
        its socket behind :attr:`fd`."""
        assert self._conn is not None and self._streams is not None
        keys = list(self._streams)
        block = [] if self._queued else ["BLOCK", BLOCK_MS]
        self._conn.send_command("XREAD", *block, "STREAMS", *keys, *(self._streams[k] for k in keys))
        self._sent_at = time.monotonic()
        os.dup2(self._conn._sock.fileno(), self.fd)

    def _drop(self) -> None:
        """Forget the connection (under the lock); the fd points at the pipe again."""
        os.dup2(self._never_r, self.fd)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:  # already broken: nothing to close
                pass
            self._client.connection_pool.release(conn)  # reconnects when taken again

    def take(self) -> list[Message]:
        """Data loop, when :attr:`fd` is readable: the messages that came, in order. Never
        raises: a failed read drops the connection (the heartbeat makes a new one)."""
        with self._lock:
            out, self._queued = self._queued, []
            if self._conn is None:
                return out
            try:
                out.extend(self._messages_of(self._conn.read_response()))
                self._send_read()
            except (redis.RedisError, OSError) as exc:
                log.warning("%s: control stream read failed: %s; reconnecting", self._label, exc)
                self._drop()
            except Exception as exc:  # not the shape of an XREAD answer: never the data loop's end
                self._count_error("control", "control stream answer not understood (%r); reconnecting", exc)
                self._drop()
            return out

    def _messages_of(self, reply: Any) -> list[Message]:
        """The messages of one XREAD answer (RESP2: ``[[stream, [[id, [field, value, ...]], ...]], ...]``)."""
        assert self._streams is not None
        out: list[Message] = []
        for key_b, entries in reply or []:
            key = key_b.decode()
            if key not in self._streams:
                continue  # a scan's assignments that an update earlier in this answer replaced
            self._streams[key] = entries[-1][0]
            if key == self._updates:
                out.extend(self._updates_of(entries))
            else:
                out.append(("assigned", self._assignments_of(entries)))
        return out

    def _updates_of(self, entries: list[Any]) -> list[Message]:
        """Decoded update entries; a new mapping's assignment stream is followed from its start."""
        assert self._streams is not None
        out: list[Message] = []
        for _id, fields in entries:
            try:
                msg = control.decode_update(_field(fields, control.UPDATE_FIELD))
            except ControlMessageError as exc:
                self._count_error("control", "update ignored: %s", exc)
                continue
            if isinstance(msg, control.MappingAnnounced):
                for k in [k for k in self._streams if k != self._updates]:
                    del self._streams[k]
                akey = self._assigned_key(msg.uuid)
                if akey:
                    self._streams[akey] = b"0-0"
            out.append((msg.kind, msg))
        return out

    def _assignments_of(self, entries: list[Any]) -> list[Any]:
        out = []
        for _id, fields in entries:
            try:
                out.append(control.decode_assignment(_field(fields, control.ASSIGNED_FIELD)))
            except ControlMessageError as exc:
                self._count_error("control", "assignment batch ignored: %s", exc)
        return out

    def close(self) -> None:
        """Release the connection and the descriptors, once (nothing is delivered after it);
        a data loop still polling :attr:`fd` then sees nothing from it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop()
            for fd in (self.fd, self._never_r, self._never_w):
                os.close(fd)
        self._client.close()


def _field(fields: list[Any], name: str) -> bytes:
    """The value of ``name`` in a stream entry's flat [field, value, ...] list (b"" if absent)."""
    key = name.encode()
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == key:
            return fields[i + 1]  # type: ignore[no-any-return]
    return b""
