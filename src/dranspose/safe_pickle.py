"""Restricted unpickling: pickles from the wire or from files never run arbitrary code.

``restricted_loads(data, allow)`` resolves a global only when the exact pair
``module:qualname`` is on the allow-list. There are no package entries and no attribute
chains: a name containing ``.`` is refused, and so is a name starting with ``_`` unless the
exact pair is one of numpy's audited reconstructors in :data:`PLAIN_DATA`. Anything else
raises :class:`UnpicklingRefused` naming the global.

numpy dtypes are checked too: ``dtype.__setstate__`` (pickle ``BUILD``) accepts forged flags
and fields, so a pickle could make an object-field dtype that numpy fills from raw bytes (a
crash or worse on first access). Every dtype a pickle builds is compared with a dtype numpy
builds itself from the same description; any difference refuses the pickle. Pickles that
build object dtypes are decoded by a slower unpickler that checks each dtype right after its
``BUILD``, before anything can use it.
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from collections.abc import Collection, Iterable
from typing import Any, ClassVar

import numpy as np

from dranspose.errors import UnpicklingRefused
from dranspose.pickle_ops import check_memo, is_plain_data

# Audited data types and reconstructors: numpy arrays, datetimes, plain containers. Not here,
# on purpose: set/frozenset/bytearray/range (protocol 4/5 need no global for them, and called
# through REDUCE they allocate without bound: ``bytearray(10**10)``), ``fractions:Fraction``
# (parses ``"1e999999999"`` into a huge integer).
PLAIN_DATA: frozenset[str] = frozenset(
    {
        "numpy:ndarray",
        "numpy:dtype",
        "numpy.core.multiarray:_reconstruct",
        "numpy._core.multiarray:_reconstruct",
        "numpy.core.multiarray:scalar",
        "numpy._core.multiarray:scalar",
        "numpy.core.numeric:_frombuffer",
        "numpy._core.numeric:_frombuffer",
        "numpy.ma.core:_mareconstruct",
        "numpy.ma.core:MaskedArray",
        "numpy.ma:MaskedArray",
        "numpy:bool_",
        "collections:OrderedDict",
        "collections:defaultdict",
        "collections:deque",
        "collections:Counter",
        "_codecs:encode",
        "datetime:date",
        "datetime:time",
        "datetime:datetime",
        "datetime:timedelta",
        "datetime:timezone",
        "uuid:UUID",
        "decimal:Decimal",
        "builtins:complex",
        "builtins:slice",
        "builtins:object",
        "copyreg:_reconstructor",
    }
)

_DTYPE = ("numpy", "dtype")


def check_name(module: str, name: str) -> None:
    """Refuse an allow-list entry that is not one plain public ``module:Name`` pair."""
    if not module or not name or "." in name or name.startswith("_") or ":" in name:
        raise UnpicklingRefused(f"allow-list entry {module}:{name} must be one public name module:Name (no '.', no leading '_')")


class AllowList:
    """A parsed allow-list: a frozenset of exact ``(module, name)`` pairs."""

    __slots__ = ("names",)

    def __init__(self, entries: Iterable[str]) -> None:
        names: set[tuple[str, str]] = set()
        for entry in entries:
            if isinstance(entry, tuple):
                module, name = entry
            else:
                module, sep, name = entry.partition(":")
                if not sep:
                    raise UnpicklingRefused(f"allow-list entry {entry!r} is a whole module; name one class as module:Name")
            if f"{module}:{name}" not in PLAIN_DATA:
                check_name(module, name)
            names.add((module, name))
        self.names = frozenset(names)

    def admits(self, module: str, name: str) -> bool:
        return (module, name) in self.names

    def __contains__(self, entry: object) -> bool:
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            return (module, name) in self.names
        return entry in self.names

    def __iter__(self) -> Any:
        return (f"{m}:{n}" for m, n in sorted(self.names))

    def __len__(self) -> int:
        return len(self.names)


def _canonical(d: Any) -> Any:
    """The dtype numpy itself builds from ``d``'s public description (flags computed by numpy)."""
    if d.fields is not None and d.names is not None:
        fields = [d.fields[n] for n in d.names]
        spec: Any = {
            "names": list(d.names),
            "formats": [_canonical(f[0]) for f in fields],
            "offsets": [int(f[1]) for f in fields],
            "itemsize": d.itemsize,
        }
        if any(len(f) > 2 for f in fields):
            spec["titles"] = [f[2] if len(f) > 2 else None for f in fields]
        return np.dtype(spec, align=d.isalignedstruct)
    if d.subdtype is not None:
        base, shape = d.subdtype
        return np.dtype((_canonical(base), shape))
    return np.dtype(d.str)


def check_dtype(d: Any) -> None:
    """Raise UnpicklingRefused unless ``d`` is a dtype numpy could have built itself."""
    try:
        ref = _canonical(d)
        same = ref == d and ref.flags == d.flags and ref.itemsize == d.itemsize and ref.hasobject == d.hasobject
    except (TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise UnpicklingRefused(f"refusing a pickled numpy dtype with an inconsistent state: {exc}") from None
    if not same:
        raise UnpicklingRefused(f"refusing a pickled numpy dtype with a forged state ({d!r}, flags {d.flags})")


class _NeedsCheckedPath(Exception):
    """An object dtype appeared: decode again with the unpickler that checks every BUILD."""


class _Guard:
    """Shared by both unpicklers: resolves allowed globals, tracks the dtypes a pickle builds."""

    def __init__(self, allow: AllowList, fast: bool) -> None:
        self.allow = allow
        self.fast = fast
        self.dtypes: list[Any] = []

    def make_dtype(self, spec: Any, align: bool = False, copy: bool = False) -> Any:
        d: Any = np.dtype(spec, bool(align), True)  # always a private copy: BUILD must not touch a shared one
        if self.fast and d.hasobject:
            raise _NeedsCheckedPath()
        self.dtypes.append(d)
        return d

    def find(self, module: str, name: str) -> Any:
        if not self.allow.admits(module, name):
            raise UnpicklingRefused(f"refusing to unpickle global {module}.{name}: not on the allow-list")
        if (module, name) == _DTYPE:
            return self.make_dtype
        mod = sys.modules.get(module) or importlib.import_module(module)
        return getattr(mod, name)  # one plain attribute: names never contain "."

    def finish(self) -> None:
        for d in self.dtypes:
            check_dtype(d)


class RestrictedUnpickler(pickle.Unpickler):
    """C unpickler with an exact-name allow-list; dtypes are checked after loading, and an
    object dtype switches to :class:`CheckedUnpickler` (see module doc)."""

    def __init__(self, file: Any, allow: Collection[str], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._guard = _Guard(allow if isinstance(allow, AllowList) else AllowList(allow), fast=True)

    def find_class(self, module: str, name: str) -> Any:
        return self._guard.find(module, name)


class CheckedUnpickler(pickle._Unpickler):
    """Pure-Python unpickler checking each dtype right after its BUILD (slow; object dtypes)."""

    dispatch: ClassVar[dict[int, Any]] = dict(getattr(pickle._Unpickler, "dispatch"))  # noqa: B009 (untyped in typeshed)

    def __init__(self, file: Any, allow: Collection[str], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._guard = _Guard(allow if isinstance(allow, AllowList) else AllowList(allow), fast=False)

    def find_class(self, module: str, name: str) -> Any:
        return self._guard.find(module, name)

    def load_build(self) -> None:
        stack: list[Any] = getattr(self, "stack")  # noqa: B009 (untyped in typeshed)
        inst = stack[-2] if len(stack) >= 2 else None
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        if isinstance(inst, np.dtype):
            check_dtype(inst)

    dispatch[pickle.BUILD[0]] = load_build


def compile_allow(allow: Iterable[str]) -> AllowList:
    """Parse an allow-list once (accepted wherever ``allow`` is)."""
    return allow if isinstance(allow, AllowList) else AllowList(allow)


def restricted_loads(data: bytes | memoryview, allow: Collection[str] = PLAIN_DATA, buffers: Iterable[Any] | None = None) -> Any:
    """Unpickle ``data`` admitting only allowed globals. Raises UnpicklingRefused (naming the
    global or the forged dtype) or ``pickle.UnpicklingError``/``ValueError``/... for corrupt
    data. ``buffers`` are protocol-5 out-of-band buffers (kept referenced, not copied).
    Memo indices are checked first (:func:`dranspose.pickle_ops.check_memo`), so a short
    pickle cannot make the unpickler allocate a huge memo."""
    bufs = list(buffers) if buffers is not None else None
    if is_plain_data(data):  # no global, no call: nothing for the allow-list or dtype checks
        return pickle.loads(data, buffers=bufs)
    allow = compile_allow(allow)
    check_memo(data)
    unpickler = RestrictedUnpickler(io.BytesIO(data), allow, buffers=bufs)
    try:
        obj = unpickler.load()
    except _NeedsCheckedPath:
        checked = CheckedUnpickler(io.BytesIO(data), allow, buffers=bufs)
        obj = checked.load()
        return obj
    unpickler._guard.finish()
    return obj
