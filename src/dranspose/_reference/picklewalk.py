"""Reference twin of ``_fastpath.picklewalk.pickle_memo_end`` (same contract, see there):
the offset after ``STOP`` of a pickle whose memo indices are sound, else -1 (the caller then
runs the full walk of :mod:`dranspose.pickle_ops`). ``buf`` is only read."""

from __future__ import annotations

from typing import Any, Sequence

STOP = -50
SIGNED4 = -3


def pickle_memo_end(buf: Any, kinds: Sequence[int], stores: Sequence[int]) -> int:
    if len(kinds) != 256 or len(stores) != 256:
        raise ValueError("kinds and stores need one entry per opcode byte (256)")
    with memoryview(buf) as outer, outer.cast("B") as view:
        end, pos, count = len(view), 0, 0
        while pos < end:
            op = view[pos]
            kind = int(kinds[op])
            if kind >= 0:
                if kind > end - pos - 1:
                    return -1
                count += 1
                if stores[op] and int.from_bytes(view[pos + 1 : pos + 1 + kind], "little") > count:
                    return -1
                pos += 1 + kind
            elif kind == STOP:
                return pos + 1
            elif kind in (-1, SIGNED4, -4, -8):
                nbytes = 4 if kind == SIGNED4 else -kind
                if nbytes > end - pos - 1:
                    return -1
                length = int.from_bytes(view[pos + 1 : pos + 1 + nbytes], "little")
                if kind == SIGNED4 and length >= 0x80000000:
                    return -1
                if length > end - pos - 1 - nbytes:
                    return -1
                count += 1
                pos += 1 + nbytes + length
            else:
                return -1
        return -1
