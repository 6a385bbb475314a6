"""Worker-side event assembly (pure, no I/O, no clock: callers pass ``now``).

Partial events arrive from every ingester in any order, possibly before the worker has read the
assignment that announces them. An event is complete when every stream the assignment lists
for this worker has arrived; then it is handed out once, in completion order. A part its
ingester calls *whole* (its streams are all this worker gets of the event: the ingester read the
same assignment) completes the event at once, without the worker's own copy of the assignment;
that copy, when it comes, is then dropped (:attr:`Assembler.ahead`).

Frames that came before their assignment wait for it here: with a monotonic ``now`` passed to
:meth:`Assembler.add` and :meth:`Assembler.expect`, those events are counted
(``assignment_waits``) and the time from their first frame to their assignment is summed
(``assignment_wait_s``). The ingester counts the other side (frames it read and held with no
assignment); this is what reached the worker before the worker heard of it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from dranspose.event import EventData, StreamData, construct

MAX_AHEAD = 1 << 16  # events completed from a whole part whose assignment is still to come, at most


@dataclass
class Assembler:
    expected: dict[int, frozenset[str]] = field(default_factory=dict)  # event -> streams due here
    partial: dict[int, dict[str, StreamData]] = field(default_factory=dict)
    created: dict[int, str] = field(default_factory=dict)  # event -> first ingester timestamp
    unexpected: int = 0  # streams that arrived for an event but were not announced for it
    assignment_waits: int = 0  # events whose frames came before their assignment (cumulative)
    assignment_wait_s: float = 0.0  # ... and the seconds they waited for it, summed (cumulative)
    unannounced_since: dict[int, float] = field(default_factory=dict)  # event -> ``now`` of its first frame, no assignment yet
    ahead: dict[int, None] = field(default_factory=dict)  # completed from a whole part, assignment not read yet (oldest first)
    _last_stamp: tuple[str | None, datetime.datetime | None] = (None, None)  # (stamp, its datetime)

    def expect(self, event: int, streams: frozenset[str], now: float | None = None) -> EventData | None:
        """Record the assignment of ``event`` (with ``streams`` for this worker); ``now``
        (monotonic seconds) times the wait of frames that came first. The assignment of an
        event completed already from a whole part is dropped (None)."""
        if self.ahead and event in self.ahead:
            del self.ahead[event]
            return None
        self.expected[event] = streams
        since = self.unannounced_since.pop(event, None)
        if since is not None and now is not None:
            self.assignment_waits += 1
            self.assignment_wait_s += max(0.0, now - since)
        return self._complete(event)

    def add(
        self, event: int, streams: dict[str, StreamData], created_at: str | None = None, now: float | None = None,
        whole: bool = False,
    ) -> EventData | None:
        """Record streams received for ``event``; returns the event when it became complete.
        ``created_at`` (ISO 8601) is the ingester's receive time; the earliest is kept.
        ``now`` (monotonic seconds): when the event is not announced yet, its wait starts.
        ``whole``: ``streams`` are all this worker gets of the event; when nothing else of it
        is here (no assignment, no other part) it is complete now, and the event takes
        ``streams`` as it is (not copied: the caller hands it over)."""
        if whole and event not in self.expected and event not in self.partial and event not in self.ahead:
            self.ahead[event] = None
            if len(self.ahead) > MAX_AHEAD:  # assignments that never come must not grow it
                del self.ahead[next(iter(self.ahead))]
            return construct(EventData, event_number=event, streams=streams, created_at=self._parse_stamp(created_at))
        if created_at is not None and (event not in self.created or created_at < self.created[event]):
            self.created[event] = created_at
        have = self.partial.get(event)
        if have is None:
            self.partial[event] = dict(streams)
            if now is not None and event not in self.expected:
                self.unannounced_since[event] = now
        else:
            have.update(streams)
        return self._complete(event)

    def _complete(self, event: int) -> EventData | None:
        want = self.expected.get(event)
        have = self.partial.get(event)
        if want is None or (want and have is None):
            return None
        have = have or {}
        if have.keys() == want:  # the usual case: exactly the announced streams arrived
            streams = have
        else:
            if not want.issubset(have):
                return None
            extra = set(have) - want
            if extra:
                self.unexpected += len(extra)
            streams = {name: have[name] for name in want}
        del self.expected[event]
        self.partial.pop(event, None)
        stamp = self.created.pop(event, None)
        return construct(EventData, event_number=event, streams=streams, created_at=self._parse_stamp(stamp))

    def _parse_stamp(self, stamp: str | None) -> datetime.datetime | None:
        """The datetime of an ISO 8601 stamp (None for none or a malformed one: it costs the
        timestamp, not the event); the events of one ingester burst share a stamp, parsed once."""
        if not stamp:
            return None
        if stamp == self._last_stamp[0]:
            return self._last_stamp[1]
        try:
            created: datetime.datetime | None = datetime.datetime.fromisoformat(stamp)
        except ValueError:
            created = None
        self._last_stamp = (stamp, created)
        return created

    def outstanding(self) -> list[int]:
        """Announced events not yet complete."""
        return sorted(self.expected)

    def clear(self) -> list[int]:
        """Forget everything; returns the announced events that never completed."""
        left = self.outstanding()
        self.expected.clear()
        self.partial.clear()
        self.created.clear()
        self.unannounced_since.clear()
        self.ahead.clear()
        return left
