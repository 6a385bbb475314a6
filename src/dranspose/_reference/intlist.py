"""Reference twin of ``_fastpath.intlist.first_bad_count`` (same contract, see there): the
index of the first entry of a list that is not an ``int`` in ``0 .. 2**63 - 1``, else -1."""

from __future__ import annotations

INT64_MAX = (1 << 63) - 1


def first_bad_count(values: list[object]) -> int:
    if type(values) is not list:
        raise TypeError(f"expected list, got {type(values).__name__}")
    for i, v in enumerate(values):
        if type(v) is not int or not 0 <= v <= INT64_MAX:
            return i
    return -1
