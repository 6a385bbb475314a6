"""The ingester's per-event header (framing.encode_header, built from cached pieces) is the
compact JSON of what it describes, for any stream names, types, counts and mapping."""

from __future__ import annotations

import datetime
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.transport import framing

_streams = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=8), st.integers(0, 5)), min_size=1, max_size=3,
                    unique_by=lambda s: s[0])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**62), _streams, st.one_of(st.none(), st.text(max_size=40)), st.sampled_from([None, "2026-12-05T01:02:03.000004Z"]))
def test_header_is_the_json_of_its_fields(event: int, streams: list[tuple[str, str, int]], mapping: str | None,
                                          created_at: str | None) -> None:
    raw = framing.encode_header(event, streams, mapping, created_at)
    doc = json.loads(raw)
    assert doc["event_number"] == event
    assert doc["streams"] == {name: {"typ": typ, "length": n} for name, typ, n in streams}
    assert list(doc["streams"]) == [name for name, _t, _n in streams]  # frames follow in this order
    assert doc.get("mapping") == mapping and ("mapping" in doc) == (mapping is not None)
    if created_at is not None:
        assert doc["created_at"] == created_at
    # a second event of the same burst shares everything after its number
    again = framing.encode_header(event + 1, tuple(streams), mapping, doc["created_at"])
    assert json.loads(again) == dict(doc, event_number=event + 1)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1.0, max_value=4e9, allow_nan=False))
def test_created_at_of_a_read_time_reads_back_as_that_time(at: float) -> None:
    """``now_iso(at)`` is the ISO form of a ``time.time()`` value, to the microsecond, as the
    worker's EventData.created_at parses it."""
    stamp = framing.now_iso(at)
    assert stamp.endswith("Z") and "+" not in stamp
    back = datetime.datetime.fromisoformat(stamp)
    assert back.tzinfo is not None and abs(back.timestamp() - at) <= 1e-6 * (1 + at * 1e-9)
