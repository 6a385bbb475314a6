"""Offline replay: worker and reducer code on recorded dumps or sources (COMPAT §1, §5).

``from dranspose.replay import replay`` is the old entry point analyses call from pytest.
Modules: :mod:`.runner` (``replay()`` and the CLI), :mod:`.engine` (event merge and dispatch),
:mod:`.params` (parameter files), :mod:`.server` (HDF REST and parameter endpoints).
"""

from dranspose.replay.runner import ReplayFailure, ReplaySummary, configure_parser, get_internals, replay, run

__all__ = ["replay", "configure_parser", "run", "ReplaySummary", "ReplayFailure", "get_internals"]
