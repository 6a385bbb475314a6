"""Restricted unpickling: pickles from the wire or from files never run arbitrary code.

``restricted_loads(data, allow)`` resolves a global ``module.name`` only when it is allowed:
an entry ``"pkg"`` admits every global of ``pkg`` and its submodules, an entry
``"module:name"`` admits that one global. Anything else raises :class:`UnpicklingRefused`
naming the global. ``PLAIN_DATA`` is the set needed for numpy arrays and plain containers.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Collection, Iterable

from dranspose.errors import UnpicklingRefused

# What numpy arrays, datetimes and plain containers need (and protocol 2's _codecs.encode).
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
        "numpy.dtypes",
        "collections:OrderedDict",
        "collections:defaultdict",
        "collections:deque",
        "_codecs:encode",
        "datetime",
        "uuid:UUID",
        "builtins:set",
        "builtins:frozenset",
        "builtins:bytearray",
        "builtins:complex",
        "builtins:slice",
        "builtins:range",
    }
)


class _Allow:
    def __init__(self, allow: Iterable[str]) -> None:
        self.packages: set[str] = set()
        self.names: set[tuple[str, str]] = set()
        for entry in allow:
            if ":" in entry:
                module, name = entry.split(":", 1)
                self.names.add((module, name))
            else:
                self.packages.add(entry)

    def admits(self, module: str, name: str) -> bool:
        if (module, name) in self.names:
            return True
        parts = module.split(".")
        return any(".".join(parts[:i]) in self.packages for i in range(1, len(parts) + 1))


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` consults an allow-list."""

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, allow: Collection[str], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._allow = allow if isinstance(allow, _Allow) else _Allow(allow)

    def find_class(self, module: str, name: str) -> Any:
        if not self._allow.admits(module, name):
            raise UnpicklingRefused(f"refusing to unpickle global {module}.{name}: not on the allow-list")
        return super().find_class(module, name)


def compile_allow(allow: Iterable[str]) -> Collection[str]:
    """Pre-parse an allow-list once (an opaque object accepted wherever ``allow`` is)."""
    return _Allow(allow)  # type: ignore[return-value]


def restricted_loads(
    data: bytes | memoryview, allow: Collection[str] = PLAIN_DATA, buffers: Iterable[Any] | None = None
) -> Any:
    """Unpickle ``data`` admitting only allowed globals. Raises UnpicklingRefused or
    ``pickle.UnpicklingError``/``ValueError`` for corrupt data. ``buffers`` are protocol-5
    out-of-band buffers (kept referenced by the returned arrays, not copied)."""
    return RestrictedUnpickler(io.BytesIO(data), allow, buffers=buffers).load()
