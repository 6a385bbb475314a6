"""Full garbage collections between scans, not during them (services/gc_pause)."""

from __future__ import annotations

import gc
import weakref
from typing import Iterator

import pytest

from dranspose.services import gc_pause


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def enabled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gc_pause, "_enabled", False)
    monkeypatch.setattr(gc_pause, "_last", -1.0e9)
    gc_pause.enable()
    try:
        yield
    finally:
        gc_pause.enable(False)
        gc.unfreeze()


def test_off_unless_the_process_runs_components(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_pause, "_enabled", False)
    before = gc.get_freeze_count()
    assert gc_pause.settle() == 0.0
    assert gc.get_freeze_count() == before
    assert gc_pause.status()["enabled"] is False


def test_settle_collects_garbage_then_freezes_the_survivors(enabled: None) -> None:
    garbage, alive = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    assert gc_pause.settle() > 0.0
    assert gone() is None  # the cycle made before the settle is freed by it
    assert gc.get_freeze_count() > 0
    st = gc_pause.status()
    assert st["enabled"] and st["frozen"] > 0 and st["last_ms"] is not None
    assert alive.me is alive


def test_components_of_one_process_settle_it_once(enabled: None) -> None:
    assert gc_pause.settle() > 0.0
    assert gc_pause.settle() == 0.0  # a second component right after: nothing to do


def test_frozen_objects_that_die_later_are_freed_by_the_next_settle(enabled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    survivor = Node()
    ref = weakref.ref(survivor)
    gc_pause.settle()  # survivor is frozen now
    del survivor
    gc.collect()
    assert ref() is not None  # frozen: an ordinary collection leaves it
    monkeypatch.setattr(gc_pause, "_last", -1.0e9)  # the next scan
    gc_pause.settle()
    assert ref() is None


def test_paused_sections_hold_the_collector_off_until_the_last_closes(enabled: None) -> None:
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
        with gc_pause.paused():  # nested (or another thread's section)
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_pause.paused():
            raise RuntimeError("compile failed")
    assert gc.isenabled()  # back on after an error too


def test_paused_leaves_a_collector_that_was_off_off(enabled: None) -> None:
    gc.disable()
    try:
        with gc_pause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_does_nothing_in_other_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc_pause, "_enabled", False)
    with gc_pause.paused():
        assert gc.isenabled()
