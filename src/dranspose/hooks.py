"""The user hook contract (COMPAT §2), loaded and checked in one place.

One adapter each for worker and reducer classes, shared by the worker and reducer services and
by replay. The adapters hide the variants found in real analysis code: keyword-only
``__init__(**kwargs)`` or named ``parameters, context``; ``timer()`` or ``timer(parameters)``;
``finish(parameters)`` positional or keyword; optional methods missing altogether.
Every call into user code that raises is wrapped in :class:`HookError` (hook name, event number).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Mapping, Protocol, runtime_checkable

from dranspose.errors import ConfigError, HookError
from dranspose.event import EventData, ResultData
from dranspose.parameters import ParameterBase
from dranspose.protocol import ParameterName, WorkParameter

log = logging.getLogger(__name__)

Parameters = Mapping[ParameterName, WorkParameter]


@runtime_checkable
class WorkerProtocol(Protocol):
    def process_event(self, event: EventData, parameters: Parameters, tick: bool) -> Any: ...


@runtime_checkable
class ReducerProtocol(Protocol):
    def process_result(self, result: ResultData, parameters: Parameters) -> None: ...


def load_class(path: str) -> type:
    """Import ``"package.module:Class"`` (or ``package.module.Class``); clear error otherwise.

    The current directory is importable, as with the old CLI (payloads are run from their repo).
    """
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"class path {path!r} must look like 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(cls, type):
        raise ConfigError(f"{path!r} is not a class")
    return cls


def class_package(path: str) -> str:
    """The top-level package of a class path (``src`` for ``src.worker:Worker``)."""
    return path.replace(":", ".").split(".")[0]


def describe_parameters(cls: type | None) -> list[ParameterBase]:
    """The parameter descriptions a user class declares (empty when it declares none)."""
    fn = getattr(cls, "describe_parameters", None) if cls is not None else None
    if fn is None:
        return []
    try:
        descriptions = list(fn())
    except Exception as exc:
        raise HookError("describe_parameters", None, exc) from exc
    for d in descriptions:
        if not isinstance(d, ParameterBase):
            raise ConfigError(f"{getattr(cls, '__name__', cls)}.describe_parameters returned {d!r}, not a parameter description")
    return descriptions


def _construct(cls: type, **kwargs: Any) -> Any:
    """Build a user object with keywords, passing only those its ``__init__`` accepts."""
    init = getattr(cls, "__init__")
    if init is object.__init__:
        kwargs = {}
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        sig = None
    if kwargs and sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in sig.parameters}
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise HookError(f"{cls.__name__}.__init__", None, exc) from exc


def _arity_caller(fn: Callable[..., Any], name: str) -> Callable[[Any], Any]:
    """A caller passing ``parameters`` positionally, by keyword, or not at all, as ``fn`` takes."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return lambda value: fn(value)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if positional:
        return lambda value: fn(value)
    if any(p.name == name or p.kind is p.VAR_KEYWORD for p in params):
        return lambda value: fn(**{name: value})
    return lambda value: fn()


class _HookBase:
    kind = "component"

    def __init__(self, cls: type, parameters: Parameters, context: dict[str, Any], state: Any) -> None:
        self.cls = cls
        self.instance = _construct(cls, parameters=parameters, context=context, state=state)
        finish = getattr(self.instance, "finish", None)
        self._finish = _arity_caller(finish, "parameters") if callable(finish) else None
        close = getattr(self.instance, "close", None)
        self._close = _arity_caller(close, "context") if callable(close) else None

    def finish(self, parameters: Parameters) -> None:
        if self._finish is None:
            return
        try:
            self._finish(parameters)
        except Exception as exc:
            raise HookError(f"{self.cls.__name__}.finish", None, exc) from exc

    def close(self, context: dict[str, Any]) -> None:
        if self._close is None:
            return
        try:
            self._close(context)
        except Exception as exc:
            raise HookError(f"{self.cls.__name__}.close", None, exc) from exc


class WorkerHooks(_HookBase):
    """Adapter around a user worker object (one per scan)."""

    kind = "worker"

    def __init__(self, cls: type, parameters: Parameters, context: dict[str, Any], state: Any) -> None:
        if not callable(getattr(cls, "process_event", None)):
            raise ConfigError(f"worker class {cls.__name__} has no process_event(event, parameters, tick)")
        super().__init__(cls, parameters, context, state)
        self._process = self.instance.process_event
        tick = getattr(self.instance, "get_tick_interval", None)
        self._tick = _arity_caller(tick, "parameters") if callable(tick) else None

    def process_event(self, event: EventData, parameters: Parameters, tick: bool = False) -> Any:
        try:
            return self._process(event, parameters, tick)
        except Exception as exc:
            raise HookError(f"{self.cls.__name__}.process_event", event.event_number, exc) from exc

    def tick_interval(self, parameters: Parameters) -> float | None:
        """Seconds between ticks across all workers, or None when the worker wants none."""
        if self._tick is None:
            return None
        try:
            value = self._tick(parameters)
            return None if value is None else float(value)
        except Exception as exc:
            log.warning("%s.get_tick_interval failed (%s): no ticks", self.cls.__name__, exc)
            return None


class ReducerHooks(_HookBase):
    """Adapter around a user reducer object (one per scan). Calls are not thread-safe: the
    reducer service serialises ``process_result``, ``timer`` and ``finish`` with one lock."""

    kind = "reducer"

    def __init__(self, cls: type, parameters: Parameters, context: dict[str, Any], state: Any) -> None:
        if not callable(getattr(cls, "process_result", None)):
            raise ConfigError(f"reducer class {cls.__name__} has no process_result(result, parameters)")
        super().__init__(cls, parameters, context, state)
        self._process = self.instance.process_result
        timer = getattr(self.instance, "timer", None)
        self._timer = _arity_caller(timer, "parameters") if callable(timer) else None
        if getattr(self.instance, "publish", None) is None:
            self.instance.publish = {}

    @property
    def has_timer(self) -> bool:
        return self._timer is not None

    @property
    def publish(self) -> Any:
        return self.instance.publish

    @property
    def publish_rlock(self) -> ContextManager[Any]:
        lock = getattr(self.instance, "publish_rlock", None)
        return lock if lock is not None else nullcontext()

    def process_result(self, result: ResultData, parameters: Parameters) -> None:
        try:
            self._process(result, parameters)
        except Exception as exc:
            raise HookError(f"{self.cls.__name__}.process_result", result.event_number, exc) from exc

    def timer(self, parameters: Parameters) -> float:
        """Call the user timer; returns the delay until the next call (1 s after a bad value)."""
        assert self._timer is not None, "timer() called on a reducer without one"
        try:
            delay = self._timer(parameters)
        except Exception as exc:
            log.error("%s.timer raised %s: %s; retrying in 1 s", self.cls.__name__, type(exc).__name__, exc)
            return 1.0
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay != delay or delay < 0:
            log.error("%s.timer returned %r, not a delay in seconds; retrying in 1 s", self.cls.__name__, delay)
            return 1.0
        return float(delay)
