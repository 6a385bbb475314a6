"""Another tree's ``src`` folder to compare against (``--against``): checked before anything runs."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def require_built(src: str | Path) -> None:
    """Exit with a clear message when the tree ``src`` has no compiled ``_fastpath`` built in
    place: its code would fall back to the reference twins (a fifth slower and more) and a
    comparison would measure that instead of the change."""
    built = [f for f in (Path(src) / "_fastpath").glob("*") if f.name.endswith(tuple(EXTENSION_SUFFIXES))]
    if not built:
        raise SystemExit(
            f"{src}: no compiled _fastpath extensions; build them first: "
            f"(cd {Path(src).resolve().parent} && python setup.py build_ext --inplace)"
        )
