"""Reference twin of ``_fastpath.batchpack.join_messages`` (same contract, see there): several
small messages joined into one batch message."""

from __future__ import annotations

from typing import Any


def join_messages(messages: list[list[Any]], pack_max: int) -> list[Any]:
    if type(messages) is not list or any(type(m) is not list for m in messages):
        raise TypeError("messages must be a list of lists")
    if len(messages) < 2:
        raise ValueError("join_messages needs at least two messages")
    if any(not m for m in messages):
        raise ValueError("a message without its header")
    sizes: list[int] = []
    small: list[Any] = []
    large: list[Any] = []
    for m in messages:
        for frame in m[1:]:
            n = frame.nbytes if isinstance(frame, memoryview) else len(frame)
            if n <= pack_max:
                sizes.append(n)
                small.append(frame)
            else:
                sizes.append(-1)
                large.append(frame)
    headers = b",".join(bytes(m[0]) for m in messages)
    packed = ",".join(map(str, sizes)).encode()
    return [b'{"batch":[' + headers + b'],"packed":[' + packed + b"]}", b"".join(small), *large]
