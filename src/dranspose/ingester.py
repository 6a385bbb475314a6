"""Custom Python ingesters, as the old ``dranspose.ingester`` API (COMPAT; old ``examples/dummy``).

Subclass :class:`Ingester` and implement ``async def run_source(self, stream)``: an async
generator yielding one :class:`~dranspose.event.StreamData` per upstream message of ``stream``
(the n-th one goes to the n-th event that mentions the stream). A stream without an upstream of
its own yields :class:`IsSoftwareTriggered` instead; its data then comes from the optional
``software_trigger()`` generator, which yields ``{stream: StreamData}`` dicts. Optional
``async def stop_source(self, stream)`` runs when a generator is stopped.

Run it like any ingester: ``dranspose ingester -c mymodule:MyIngester -n STREAM -u URL``. The
service calls ``MyIngester(settings)`` once (``settings.upstream_url``, ``.ingester_streams``),
starts ``run_source`` at the first scan and again at the next scan after it ended (e.g. after
an end-of-series message), and pulls from it only as far as events are assigned (at most a
couple of messages ahead). Each stream's
generator runs in its own thread with its own asyncio loop; ``self.ctx`` is a
``zmq.asyncio.Context`` for sockets created inside ``run_source``.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Optional

import zmq.asyncio

from dranspose.config import Settings
from dranspose.event import StreamData
from dranspose.protocol import StreamName

IngesterSettings = Settings


class IsSoftwareTriggered(Exception):
    """Yielded by ``run_source`` for a stream whose frames ``software_trigger()`` makes."""


class Ingester:
    """Base of custom Python ingesters (see the module doc)."""

    def __init__(self, settings: Optional[Settings] = None, **kwargs: Any) -> None:
        self._ingester_settings = settings if settings is not None else Settings()
        self.settings = self._ingester_settings
        self._logger = logging.getLogger(f"{type(self).__module__}.{type(self).__name__}")
        self.ctx = zmq.asyncio.Context.instance()
        self.parameters: dict[str, Any] = {}
        self.state: Any = None  # set by the service: name, streams, mapping_uuid

    async def run_source(self, stream: StreamName) -> AsyncIterator[StreamData | IsSoftwareTriggered]:
        """Yield one StreamData per upstream message of ``stream``; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement async def run_source(self, stream)")
        yield  # pragma: no cover  (makes this an async generator)

    async def stop_source(self, stream: StreamName) -> None:
        """Called after ``stream``'s generator was stopped (a new scan, shutdown)."""
