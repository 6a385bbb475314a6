"""The result header check takes a short path for the common header (exact types); whatever
that path does not accept goes through the field-by-field check, so every header gets the
same verdict and error as before."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.transport.results import _check_header_fields, check_header

KEYS = ("event_number", "buffers", "worker", "parameters_hash", "mapping")
values = st.none() | st.booleans() | st.integers(-3, 2**64) | st.floats(allow_nan=False) | st.text(max_size=3) | st.lists(st.integers(), max_size=2)


def _outcome(check: Any, header: Any) -> Any:
    try:
        return ("accepted", check(header) is header)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=500, deadline=None)
@given(header=st.dictionaries(st.sampled_from(KEYS + ("extra",)), values) | values)
def test_same_verdict_as_the_field_check(header: Any) -> None:
    assert _outcome(check_header, header) == _outcome(_check_header_fields, header)


def test_the_common_header_is_accepted() -> None:
    header = {"event_number": 3, "worker": "w0", "parameters_hash": None, "mapping": "m", "buffers": 0}
    assert check_header(header) is header
