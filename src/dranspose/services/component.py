"""What every service process shares: presence in Redis, error counting, log forwarding and
the control listener (controller announcements and assignment batches).

Threads: the service's own data loop (ZeroMQ, user code, and the control feed: it polls the
feed's Redis connection beside its sockets and reads a reply once it has come, so it never
waits on Redis; see ``control_feed``), and one heartbeat thread writing the component's state
with a TTL (its presence) and reconnecting the feed when it lost Redis.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

import redis
import zmq

import dranspose
from dranspose.config import Settings
from dranspose.services import gc_pause, logs
from dranspose.services.control_feed import ControlFeed
from dranspose.services.loop_time import core_time
from dranspose.states import build_meta, read_build_meta
from dranspose.store.connection import connect
from dranspose.store.keys import Keys
from dranspose.transport import control
from dranspose.transport.resend import RedisRestarts

log = logging.getLogger(__name__)

class Component:
    """Base of ingester, worker and reducer services."""

    kind = "component"

    def __init__(self, name: str, settings: Settings, *, zmq_context: zmq.Context | None = None) -> None:
        """Builds the component's state only: no Redis round trip, no socket, no thread.
        :meth:`start` does the I/O, :meth:`run` is the data loop."""
        self.name = name
        self.settings = settings
        self.keys = Keys()
        self.service_uuid = uuid.uuid4()
        self.redis = connect(settings.redis_url, check=False)  # a lazy client: no connection yet
        self.ctx = zmq_context or zmq.Context.instance()
        self.errors: collections.Counter[str] = collections.Counter()
        self.stopping = threading.Event()
        self.mapping_uuid: str | None = None
        self.descriptions: dict[str, Any] = {}  # parameters this component's user class declares
        self.parameters: dict[str, Any] = {}  # the live dict user objects hold (updated in place)
        self.parameters_hash: str | None = None  # digest of ``parameters`` (as results carry it)
        self._user_state: Any = None
        self._threads: list[threading.Thread] = []
        self.loop_beat = time.monotonic()  # the data loop sets it each turn (advertised as loop_age)
        self.loop_tid: int | None = None  # the data loop's thread (enter_data_loop): its core time is advertised
        self._build_meta = self._read_build_meta(settings.build_meta_file)
        self._control: ControlFeed | None = None  # made by start()
        self._started = False
        self.redis_restarts = RedisRestarts()  # asked by the heartbeat thread (look_for_redis_replaced)
        self.redis_replacements = 0  # Redis servers seen replaced: the heartbeat thread counts, the data loop reads
        self._replacements_seen = 0  # of those, the ones the data loop was told of (redis_was_replaced)

    @staticmethod
    def _read_build_meta(path: str | None) -> Any:
        """The JSON of BUILD_META_FILE (image build info shown in /api/v1/config), if any."""
        return read_build_meta(path)

    # ---- errors
    def _on_assigned(self, batches: list[control.AssignmentBatch | control.AssignmentRun | control.RerouteBatch]) -> None:
        """The assignment batches of the current mapping, each applied on its own: a malformed
        one is counted and logged and does not cost the batches after it."""
        for batch in batches:
            try:
                if batch.mapping != self.mapping_uuid:
                    continue
                if isinstance(batch, control.RerouteBatch):
                    self._on_reroute(batch)
                else:
                    self._on_assignment(batch)
            except Exception as exc:
                self.count_error("control", "assignment batch not applied: %r", exc)

    def _on_assignment(self, batch: control.AssignmentBatch | control.AssignmentRun) -> None:
        """One batch of new assignments (components that take assignments override it)."""
        raise NotImplementedError

    def _on_reroute(self, batch: control.RerouteBatch) -> None:
        """A dead worker's events re-routed (components that take assignments override it)."""
        raise NotImplementedError

    def count_error(self, category: str, message: str, *args: Any, exc_info: bool = False) -> None:
        """Count a failure under ``category`` and log it (with traceback when asked)."""
        self.errors[category] += 1
        log.error(f"{self.kind} {self.name}: {message}", *args, exc_info=exc_info)

    # ---- presence
    def state(self) -> dict[str, Any]:
        """The advertised state; services extend it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "service_uuid": str(self.service_uuid),
            "mapping_uuid": self.mapping_uuid,
            "errors": dict(self.errors),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": dranspose.__version__,
            "dranspose_version": dranspose.__version__,
            "build": self._build_meta,
            "mapreduce_version": build_meta(self._build_meta),
            "parameters_hash": self.parameters_hash,
            "time": time.time(),
            "loop_age": round(time.monotonic() - self.loop_beat, 2),
            "data_loop": self._data_loop_time(),
            "gc": gc_pause.status(),  # full collections run between scans, not during them
        }

    def enter_data_loop(self) -> None:
        """Called by ``run`` in the thread that runs the data loop: its time on a core and
        waiting for one are advertised from then on (``data_loop``)."""
        self.loop_tid = threading.get_native_id()

    def _data_loop_time(self) -> dict[str, float] | None:
        spent = core_time(self.loop_tid) if self.loop_tid is not None else None
        return spent.as_state() if spent is not None else None

    def user_state(self) -> Any:
        """The ``state`` object user classes receive: one per component, updated in place (so a
        user object keeps seeing the current ``mapping_uuid`` and ``parameters_hash``)."""
        from dranspose.states import user_state

        fields = self.state()
        if self._user_state is None:
            self._user_state = user_state(**fields)
        else:
            for key, value in user_state(**fields):
                setattr(self._user_state, key, value)
        return self._user_state

    def _refresh_user_state(self) -> None:
        if self._user_state is not None:
            self._user_state.parameters_hash = self.parameters_hash
            self._user_state.mapping_uuid = self.mapping_uuid

    def publish_state(self, client: redis.Redis | None = None) -> None:
        client = client or self.redis
        pipe = client.pipeline(transaction=False)
        pipe.set(self.keys.state(self.kind, self.name), json.dumps(self.state()), px=int(self.settings.presence_ttl * 1000))
        pipe.sadd(self.keys.members(self.kind), self.name)
        pipe.execute()

    def _heartbeat_loop(self) -> None:
        client = connect(self.settings.redis_url, check=False)
        while not self.stopping.is_set():
            if self._control is not None:
                try:
                    self._control.maintain()  # reconnects the control feed if it lost Redis
                except Exception:
                    log.exception("%s %s: reconnecting the control feed failed; retrying", self.kind, self.name)
            try:
                self.publish_state(client)
            except redis.RedisError as exc:
                log.warning("%s %s: cannot publish state: %s", self.kind, self.name, exc)
            except Exception:  # e.g. a dict resized by the data thread: retry, never stop beating
                log.exception("%s %s: building the state failed; retrying", self.kind, self.name)
            try:
                self.look_up(client)
            except redis.RedisError:
                pass  # looked up again next beat; a Redis that stays away shows in the publish's warning
            except Exception:
                log.exception("%s %s: looking up Redis failed; retrying", self.kind, self.name)
            self.stopping.wait(self.settings.heartbeat_interval)
        try:  # leave the member set first: the controller then sees a departure, not a death
            client.srem(self.keys.members(self.kind), self.name)
            client.delete(self.keys.state(self.kind, self.name))
        except redis.RedisError:
            pass

    def look_up(self, client: redis.Redis) -> None:
        """Runs in the heartbeat thread after each beat, with its own client: what the data
        loop needs from Redis besides its own reports, looked up here so that the loop never
        waits for it (services override it and leave what they found for the loop to apply)."""

    def look_for_redis_replaced(self, client: redis.Redis) -> None:
        """For :meth:`look_up`: ``redis_replacements`` grows when the Redis server was replaced
        (its ``run_id`` changed; asked at most every 0.5 s)."""
        if self.redis_restarts.restarted(client, time.monotonic()):
            self.redis_replacements += 1

    def redis_was_replaced(self) -> bool:
        """Data loop: has the heartbeat thread seen a new Redis server since the last call?"""
        if self.redis_replacements == self._replacements_seen:
            return False
        self._replacements_seen = self.redis_replacements
        return True

    def member_states(self, kind: str, client: redis.Redis | None = None) -> list[dict[str, Any]]:
        """The advertised states of the live components of one kind (one SMEMBERS, one MGET),
        through ``client`` (default: the data loop's)."""
        r = self.redis if client is None else client
        names = [n.decode() for n in r.smembers(self.keys.members(kind))]
        raws = r.mget([self.keys.state(kind, n) for n in names]) if names else []
        return [json.loads(raw) for raw in raws if raw]

    def shared_descriptions(self, own: dict[str, Any]) -> dict[str, Any]:
        """Parameter descriptions of every worker, reducer and ingester (one namespace), ``own`` first."""
        from dranspose.core.parameters import merge_descriptions
        from dranspose.parameters import parameter_list_adapter

        groups = [list(own.values())]
        for kind in ("worker", "reducer", "ingester"):
            for state in self.member_states(kind):
                try:
                    groups.append(parameter_list_adapter.validate_python(state.get("parameters", [])))
                except ValueError as exc:
                    log.warning("ignoring bad parameter descriptions of a %s: %s", kind, exc)
        try:
            return merge_descriptions(*groups)
        except ValueError as exc:
            self.count_error("parameters", "conflicting parameter descriptions: %s", exc)
            return dict(own)

    def reload_parameters(self) -> dict[str, Any]:
        """Rebuild ``self.parameters`` in place from Redis (user objects keep the same dict)."""
        from dranspose.core.parameters import build_parameters, parameters_hash

        raw = {k.decode(): v for k, v in self.redis.hgetall(self.keys.parameters()).items()}
        params = build_parameters(self.shared_descriptions(self.descriptions), raw)
        self.parameters.clear()
        self.parameters.update(params)
        self.parameters_hash = parameters_hash({k: p.data for k, p in params.items()})
        self._refresh_user_state()
        return params

    def call_finish(self, hooks: Any) -> None:
        """Run the user's ``finish(parameters)``; a failure is counted, never raised."""
        from dranspose.errors import HookError

        if hooks is None:
            return
        try:
            hooks.finish(self.parameters)
        except HookError as exc:
            self.count_error("hook", "finish failed: %s", exc, exc_info=True)

    def call_close(self, hooks: Any, context: dict[str, Any]) -> None:
        """Run the user's ``close(context)`` at shutdown; a failure is counted."""
        from dranspose.errors import HookError

        if hooks is None:
            return
        try:
            hooks.close(context)
        except HookError as exc:
            self.count_error("hook", "close failed: %s", exc)

    # ---- control listener
    def assigned_key(self, mapping_uuid: str) -> str | None:
        """The assignment stream this component follows for a mapping (None: only updates)."""
        return self.keys.assigned(mapping_uuid)

    # ---- lifecycle
    def open(self) -> None:
        """Bind and connect the component's own sockets (called by :meth:`start`); services extend it."""

    def start(self) -> None:
        """Check Redis, open the control feed and the sockets, start the heartbeat thread, advertise.
        Raises :class:`RedisUnavailable` with a clear message when Redis is not there."""
        if self._started:
            return
        connect(self.settings.redis_url)  # one ping: a clear error before anything starts
        self._control = ControlFeed(self.settings.redis_url, self.keys, self.assigned_key, self.count_error, f"{self.kind} {self.name}")
        self._control.start()
        self.open()
        self._started = True
        t = threading.Thread(target=self._heartbeat_loop, name=f"{self.kind}-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)
        self.publish_state()
        gc_pause.settle()

    start_background = start  # the older name

    def run(self) -> None:
        """The data loop, in the calling thread, until :meth:`stop`; services implement it."""
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()

    def join_background(self, timeout: float = 3.0) -> None:
        for t in self._threads:
            t.join(timeout)
        if self._control is not None:
            self._control.close()

    def control_handlers(self) -> dict[str, Callable[[Any], None]]:
        """Control message kind -> handler; services override (unknown kinds are ignored)."""
        return {}

    def handle_control(self) -> None:
        """Apply every waiting control message, in order (called from the data loop)."""
        handlers = self.control_handlers()
        for kind, payload in self.recv_control():
            handler = handlers.get(kind)
            if handler is None and kind == "mapping_resumed":  # services without a rejoin step
                handler = handlers.get("mapping")
            if handler is None:
                continue
            try:
                handler(payload)
            except redis.RedisError:
                raise  # the data loop counts it and retries
            except Exception as exc:  # a malformed control message must not end the component
                self.count_error("control", "control message %r not applied: %r", kind, exc, exc_info=True)
            if kind in ("mapping", "mapping_resumed"):
                gc_pause.settle()  # between scans: no full collection stalls this one

    def recv_control(self) -> list[tuple[str, Any]]:
        """The control messages that came (call when :attr:`control_socket` is readable)."""
        return self._feed().take()

    @property
    def control_socket(self) -> int:
        """The descriptor a data loop polls for control messages (the same for the component's life)."""
        return self._feed().fd

    def _feed(self) -> ControlFeed:
        if self._control is None:
            raise RuntimeError(f"{self.kind} {self.name}: start() before run()")
        return self._control


_forwarding: logs.RedisLogHandler | None = None


def install_log_forwarding(settings: Settings, label: str) -> logs.RedisLogHandler:
    """Forward this process's log records to the shared log stream, once per process (a second
    call replaces the handler; components never add handlers themselves): ``label`` names the
    process, e.g. ``worker:w1``."""
    global _forwarding
    remove_log_forwarding()
    _forwarding = logs.install(connect(settings.redis_url, check=False), Keys().logs(), label, settings.log_forward_level)
    return _forwarding


def remove_log_forwarding() -> None:
    global _forwarding
    if _forwarding is not None:
        logs.uninstall(_forwarding)
        _forwarding = None


def run_until_stopped(component: Component, loop: Callable[[], None]) -> None:
    """Run ``loop`` with the background threads; stop them however the loop ends."""
    component.start()
    try:
        loop()
    finally:
        component.stop()
        component.join_background()
