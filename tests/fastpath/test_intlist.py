"""``first_bad_count`` on both backends: the check of a control message's event numbers finds
the first entry that is not an int in ``0 .. 2**63-1`` (bools, floats, strings, negatives and
numbers past int64 refused), the same index on both, and reads the list without changing it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend

INT64_MAX = (1 << 63) - 1

VALUES = st.one_of(
    st.integers(0, INT64_MAX),
    st.integers(0, INT64_MAX),  # mostly good entries: bad ones then sit anywhere in the list
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(0, 9), max_size=2),
)


def spec(values: list[Any]) -> int:
    for i, v in enumerate(values):
        if type(v) is not int or v < 0 or v > INT64_MAX:
            return i
    return -1


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(VALUES, max_size=40))
def test_first_bad_entry_is_found(be: backend.Backend, values: list[Any]) -> None:
    before = list(values)
    assert be.first_bad_count(values) == spec(values)
    assert values == before


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], -1),
        ([0, 1, INT64_MAX], -1),
        ([0, INT64_MAX + 1], 1),
        ([0, -1], 1),
        ([True], 0),  # JSON true is not event number 1
        ([3, 2.0], 1),
        ([3, "4"], 1),
        ([1 << 64, 1], 0),
        ([-(1 << 64)], 0),
    ],
)
def test_edges(be: backend.Backend, values: list[Any], expected: int) -> None:
    assert be.first_bad_count(values) == expected


def test_only_lists(be: backend.Backend) -> None:
    with pytest.raises(TypeError):
        be.first_bad_count((1, 2))  # type: ignore[arg-type]


def test_none_and_list_subclasses_refused(be: backend.Backend) -> None:
    class Numbers(list):  # type: ignore[type-arg]
        pass

    for bad in (None, Numbers([1, 2])):
        with pytest.raises(TypeError):
            be.first_bad_count(bad)  # type: ignore[arg-type]
