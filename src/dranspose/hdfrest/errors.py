"""Errors of the HDF REST server; each carries the HTTP status it maps to (always 4xx)."""

from __future__ import annotations

from dranspose.errors import DransposeError


class HdfRestError(DransposeError, ValueError):
    """A request the server refuses; ``status`` is the HTTP status (4xx)."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(HdfRestError):
    """The object, link or attribute does not exist (or is not servable)."""

    status = 404


class SelectionError(HdfRestError):
    """A ``select`` string or point list is malformed, out of range or of the wrong rank."""

    status = 400
