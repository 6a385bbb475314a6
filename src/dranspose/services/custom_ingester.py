"""Hosting a custom :class:`dranspose.ingester.Ingester` subclass in the ingester service.

The subclass's ``run_source(stream)`` generator becomes an upstream: a thread per stream runs
it in an asyncio loop and pushes each item as ``[typ, *frames]`` over an inproc PUSH/PULL pair
with a high-water mark of 1, so the generator runs at most a couple of messages ahead of what
the ingester reads (and the ingester reads only for assigned events). The first scan starts
the generator; a generator that has ended (e.g. after its end-of-series message, as the old
built-in ingesters do) is started afresh at the next scan. A running one is kept: the old
service restarted it at every scan only after every component had confirmed the new map, and
restarting here, where a map is announced asynchronously, would lose the scan's first messages
to the previous generator.

An exception in user code is logged with its traceback and the stream's generator is started
again after a second (the ingester process stays up).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Iterator, Sequence

import zmq
import zmq.asyncio

from dranspose.config import Settings
from dranspose.errors import ConfigError, ProtocolError
from dranspose.event import StreamData
from dranspose.ingester import Ingester as CustomIngester
from dranspose.ingester import IsSoftwareTriggered
from dranspose.protocols.base import Frame, Kind, Unit
from dranspose.services.upstreams import ZmqReceiver

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0


def is_custom_ingester(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, CustomIngester)


def _frames(item: Any, stream: str) -> tuple[str, list[Any]]:
    if not isinstance(item, StreamData):
        raise TypeError(f"run_source({stream!r}) yielded {type(item).__name__}, not StreamData or IsSoftwareTriggered")
    return item.typ, list(item.frames)


class SourcePump:
    """Runs one stream's generator in a thread (see the module doc)."""

    def __init__(self, ctx: zmq.Context, owner: CustomIngester, stream: str) -> None:
        self.owner, self.stream = owner, stream
        self.endpoint = f"inproc://custom-source-{id(self)}"
        self.pull = ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.RCVHWM, 1)
        self.pull.bind(self.endpoint)
        self._actx = zmq.asyncio.Context.shadow(ctx.underlying)
        self.starts = 0
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"source-{stream}", daemon=True)
        self._thread.start()
        self.errors = 0

    # ---- control (any thread)
    def ensure_running(self) -> None:
        """Start the generator unless it is running (the first scan, or after it ended)."""
        asyncio.run_coroutine_threadsafe(self._ensure(), self._loop)

    def close(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._cancel(), self._loop)
        try:
            fut.result(5)
        except Exception:  # shutting down: nothing left to report to
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self.pull.close(linger=0)

    # ---- the loop thread
    async def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass
            self._task = None

    async def _ensure(self) -> None:
        if self._task is None or self._task.done():
            self.starts += 1
            self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        push = self._actx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 1)
        push.connect(self.endpoint)
        try:
            while True:
                gen: Any = self.owner.run_source(self.stream)  # type: ignore[arg-type]
                software: Iterator[dict[str, StreamData]] | None = None
                try:
                    async for item in gen:
                        if item is IsSoftwareTriggered or isinstance(item, IsSoftwareTriggered):
                            if software is None:
                                maker = getattr(self.owner, "software_trigger", None)
                                if maker is None:
                                    raise TypeError(f"stream {self.stream!r} is software-triggered but there is no software_trigger()")
                                software = iter(maker())
                            item = next(software)[self.stream]
                        typ, frames = _frames(item, self.stream)
                        await push.send_multipart([typ.encode(), *frames], copy=False)
                    log.info("run_source(%r) ended", self.stream)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.errors += 1
                    log.exception("custom ingester %s: run_source(%r) failed; restarting in %.0f s", type(self.owner).__name__, self.stream, RESTART_DELAY)
                    await asyncio.sleep(RESTART_DELAY)
                finally:
                    try:
                        await gen.aclose()
                        await self.owner.stop_source(self.stream)  # type: ignore[arg-type]
                    except Exception:
                        log.exception("custom ingester %s: stopping %r failed", type(self.owner).__name__, self.stream)
        finally:
            push.close(linger=0)


class SourceUpstream(ZmqReceiver):
    """The ingester-side view of a :class:`SourcePump` (the service's Upstream protocol): its
    inproc PULL socket, read like any ZeroMQ upstream (never blocking)."""

    def __init__(self, pump: SourcePump) -> None:
        self.pump = pump
        self.pollable = pump.pull

    def close(self) -> None:
        self.pump.close()


class SourceCutter:
    """Every item of the generator is one DATA unit (typ per item)."""

    has_start = False

    def __init__(self, factory: "SourceFactory") -> None:
        self.factory = factory
        self.typ = "custom"
        self.pump: SourcePump | None = None

    def open_upstream(self, ctx: zmq.Context, stream: str, upstream_url: str | None) -> SourceUpstream:
        self.pump = SourcePump(ctx, self.factory.instance(stream, upstream_url), stream)
        return SourceUpstream(self.pump)

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) < 1:
            raise ProtocolError("custom source message without typ")
        typ_frame = parts[0]
        typ = (typ_frame.bytes if isinstance(typ_frame, zmq.Frame) else bytes(typ_frame)).decode()
        self.typ = typ
        return [Unit(Kind.DATA, list(parts[1:]), meta={"typ": typ})]

    def reset(self) -> None:
        """A new scan: start the generator if it is not running."""
        if self.pump is not None:
            self.pump.ensure_running()


class SourceFactory:
    """``make_cutter`` of a StreamSpec for a custom ingester class: one user object per
    ingester process, shared by its streams."""

    def __init__(self, cls: type) -> None:
        if not is_custom_ingester(cls):
            raise ConfigError(f"{cls!r} is not a dranspose.ingester.Ingester subclass")
        self.cls = cls
        self._instance: CustomIngester | None = None
        self._streams: list[str] = []

    def instance(self, stream: str, upstream_url: str | None) -> CustomIngester:
        self._streams.append(stream)
        if self._instance is None:
            settings = Settings(upstream_url=upstream_url, ingester_streams=[stream])
            try:
                self._instance = self.cls(settings)
            except Exception as exc:
                raise ConfigError(f"cannot create the ingester {self.cls.__name__}: {exc!r}") from exc
        else:
            self._instance.settings.ingester_streams = list(self._streams)
        return self._instance

    def __call__(self) -> SourceCutter:
        return SourceCutter(self)
