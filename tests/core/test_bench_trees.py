"""A tree compared against must have its compiled hot path built, or the comparison would
measure the reference twins instead of the change."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from bench.trees import require_built


def test_a_tree_without_its_extensions_is_refused_with_the_build_command(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "_fastpath").mkdir(parents=True)
    (src / "_fastpath" / "eventframes.pyx").write_text("")  # sources only, nothing built
    with pytest.raises(SystemExit, match=r"no compiled _fastpath extensions.*build_ext --inplace"):
        require_built(src)


def test_a_built_tree_passes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "_fastpath").mkdir(parents=True)
    (src / "_fastpath" / f"eventframes{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    require_built(src)
    require_built(str(src))
