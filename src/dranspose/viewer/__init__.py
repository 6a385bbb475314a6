"""The live web viewer at ``/viewer``: the ``publish`` tree and plots of the selected datasets,
updated while the scan runs. Served by the reducer and by ``dranspose replay --port``.

Public API: :func:`mount`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def mount(app: FastAPI, source: Any) -> None:
    """Add the viewer routes over ``source`` (an object with ``publish`` and optionally
    ``publish_rlock``, or a dict) to ``app``."""
    from dranspose.viewer.routes import build_router

    app.include_router(build_router(source))


__all__ = ["mount"]
