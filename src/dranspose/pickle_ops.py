"""Walk a pickle's opcodes without building anything, to bound what unpickling it may allocate.

CPython's unpickler sizes its memo by the largest index a ``PUT`` names: a 6-byte
``LONG_BINPUT 88801649`` makes it allocate ~700 MB before any object exists. Pickles written
by :mod:`pickle` store memo entries in order (``pickletools.optimize`` drops some, leaving
gaps), so an index can never exceed the number of opcodes read so far. :func:`check_memo`
refuses any pickle where it does, which bounds the memo by the pickle's own length.

The walk reads opcode arguments in place: data arguments (``BINBYTES8`` of a 100 MB array)
are skipped, never copied. It ends at ``STOP`` and returns the offset after it.
"""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Callable

import numpy as np

from dranspose import backend
from dranspose.errors import UnpicklingRefused

# Argument kinds, from pickletools' descriptors: n >= 0 fixed bytes, or one of these.
_LINE = pickletools.UP_TO_NEWLINE
_LEN1 = pickletools.TAKEN_FROM_ARGUMENT1
_LEN4 = pickletools.TAKEN_FROM_ARGUMENT4
_LEN4U = pickletools.TAKEN_FROM_ARGUMENT4U
_LEN8U = pickletools.TAKEN_FROM_ARGUMENT8U
_NO_ARG = -100
_PAIR_OF_LINES = -101  # GLOBAL/INST: "module\nname\n"

_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_LENGTH_SIZE = {_LEN1: 1, _LEN4: 4, _LEN4U: 4, _LEN8U: 8}

# Indexed by opcode byte: (name, argument kind, stores in the memo), None for unknown bytes.
_TABLE: list[tuple[str, int, bool] | None] = [None] * 256
for _op in pickletools.opcodes:
    _kind = _NO_ARG if _op.arg is None else _op.arg.n
    if _op.arg is not None and _op.arg.name == "stringnl_noescape_pair":
        _kind = _PAIR_OF_LINES
    _TABLE[ord(_op.code.encode("latin-1"))] = (_op.name, _kind, _op.name in _PUTS or _op.name == "MEMOIZE")


# The same table for the one-loop check (dranspose.backend.pickle_memo_end, contract in
# _fastpath.picklewalk): kinds 0..8 fixed bytes, -1/-4/-8 unsigned length of 1/4/8 bytes,
# -3 signed 4-byte length, -50 STOP, -100 not taken there (line arguments, unknown bytes).
_FAST_LENGTH = {_LEN1: -1, _LEN4: -3, _LEN4U: -4, _LEN8U: -8}
FAST_KINDS = np.full(256, -100, dtype=np.int16)
FAST_STORES = np.zeros(256, dtype=np.uint8)
for _byte, _entry in enumerate(_TABLE):
    if _entry is None:
        continue
    _name, _kind, _stores = _entry
    if _name == "STOP":
        FAST_KINDS[_byte] = -50
    elif _kind == _NO_ARG:
        FAST_KINDS[_byte] = 0  # MEMOIZE too: its index is the next one, never too large
    elif _kind >= 0:
        FAST_KINDS[_byte] = _kind
        FAST_STORES[_byte] = 1 if _stores else 0
    elif _kind in _FAST_LENGTH:
        FAST_KINDS[_byte] = _FAST_LENGTH[_kind]
FAST_KINDS.flags.writeable = False
FAST_STORES.flags.writeable = False

# The same walk, refusing every opcode that reaches a callable or a global (GLOBAL and INST
# take line arguments and are never taken by the walk anyway): a pickle it accepts builds
# only the unpickler's own containers, numbers, strings and buffers, and never calls
# ``find_class`` -- :func:`is_plain_data`.
_CALLING = ("STACK_GLOBAL", "EXT1", "EXT2", "EXT4", "REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "OBJ", "BINPERSID")
PLAIN_KINDS = FAST_KINDS.copy()
for _byte, _entry in enumerate(_TABLE):
    if _entry is not None and _entry[0] in _CALLING:
        PLAIN_KINDS[_byte] = -100
PLAIN_KINDS.flags.writeable = False


class PickleMalformed(pickle.UnpicklingError):
    """Not a pickle: an unknown opcode or a malformed argument."""


class PickleTruncated(PickleMalformed):
    """The data ends before the pickle's ``STOP`` (more bytes may complete it)."""


def walk(data: bytes | bytearray | memoryview, on_put: Callable[[int, int, int], None]) -> int:
    """Call ``on_put(index, opcode_count, offset)`` for every memo store of the pickle at the
    start of ``data``; return the offset just after its ``STOP``. Raises PickleMalformed for
    an unknown opcode or a malformed argument, PickleTruncated when ``data`` ends first.
    ``data`` is only read."""
    with memoryview(data) as outer, outer.cast("B") as view:  # released on return and on raise
        return _walk(view, data if isinstance(data, (bytes, bytearray)) else None, on_put)


def _walk(view: memoryview, text: bytes | bytearray | None, on_put: Callable[[int, int, int], None]) -> int:
    """``text``: the same bytes with a ``find`` (copied from ``view`` on first need)."""
    end = len(view)
    table = _TABLE
    pos = 0
    count = 0
    while pos < end:
        entry = table[view[pos]]
        if entry is None:
            raise PickleMalformed(f"pickle opcode 0x{view[pos]:02x} at byte {pos} is unknown")
        name, kind, stores = entry
        start = pos
        pos += 1
        count += 1
        if kind >= 0:
            if pos + kind > end:
                break
            if stores:
                on_put(int.from_bytes(view[pos : pos + kind], "little"), count, start)
            pos += kind
            continue
        if kind == _NO_ARG:
            if stores:  # MEMOIZE: the next index
                on_put(-1, count, start)
            elif name == "STOP":
                return pos
            continue
        if kind in (_LINE, _PAIR_OF_LINES):
            for _ in range(2 if kind == _PAIR_OF_LINES else 1):
                if text is None:  # only protocols 0 and 1 have line arguments
                    text = view.tobytes()
                nl = text.find(b"\n", pos)
                if nl < 0:
                    raise PickleTruncated(f"pickle truncated in opcode {name} at byte {start}")
                if name == "PUT":
                    digits = bytes(text[pos:nl])
                    if not digits.isdigit() or len(digits) > 18:
                        raise PickleMalformed(f"pickle PUT at byte {start} has index {digits[:20]!r}")
                    on_put(int(digits), count, start)
                pos = nl + 1
            continue
        size_len = _LENGTH_SIZE[kind]
        if pos + size_len > end:
            break
        length = int.from_bytes(view[pos : pos + size_len], "little", signed=kind == _LEN4)
        if length < 0:
            raise PickleMalformed(f"pickle opcode {name} at byte {start} has a negative length")
        pos += size_len + length
        if pos > end:
            break
    raise PickleTruncated(f"pickle truncated or without STOP ({end} bytes)")


def is_plain_data(data: bytes | bytearray | memoryview) -> bool:
    """Is ``data`` a binary pickle (protocol 1+) of plain data only: sound memo indices, and
    no opcode that resolves a global or calls anything (so :func:`pickle.loads` of it never
    runs code and never allocates a memo beyond its opcodes)? False is no verdict: the full
    checks decide."""
    try:
        return backend.pickle_memo_end(data, PLAIN_KINDS, FAST_STORES) >= 0
    except (ValueError, TypeError, BufferError):
        return False


def check_memo(data: bytes | bytearray | memoryview) -> int:
    """Refuse (UnpicklingRefused) a pickle whose memo indices could not come from :mod:`pickle`:
    an index above the number of opcodes read so far. Returns the offset after ``STOP``.

    A binary pickle that passes is proven so in one compiled loop; anything else (protocols 0
    and 1, and every pickle that fails) takes the walk below, which gives the precise error."""
    try:
        end = backend.pickle_memo_end(data, FAST_KINDS, FAST_STORES)
    except (ValueError, TypeError, BufferError):  # e.g. a non-contiguous view: the walk reads it
        end = -1
    if end >= 0:
        return end

    def on_put(index: int, count: int, offset: int) -> None:
        if index > count:
            raise UnpicklingRefused(f"pickle memo index {index} at byte {offset} exceeds the {count} opcodes before it")

    return walk(data, on_put)
