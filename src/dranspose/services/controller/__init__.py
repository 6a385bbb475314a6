"""The controller: REST API, scan state, assignment of events to workers."""

from dranspose.services.controller.app import create_app

__all__ = ["create_app"]
