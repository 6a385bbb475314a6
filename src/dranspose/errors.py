"""The dranspose exception hierarchy.

Every error raised on purpose by dranspose derives from :class:`DransposeError` and also from
the builtin a caller would naturally catch (``ValueError`` for bad data, ``RuntimeError`` for
failures of user code), so ``except ValueError`` keeps working for code that predates us.
"""

from __future__ import annotations


class DransposeError(Exception):
    """Base of every error dranspose raises on purpose."""


class ConfigError(DransposeError, ValueError):
    """A setting, class path, trigger map or parameter is invalid."""


class ProtocolError(DransposeError, ValueError):
    """A message off the wire does not follow its protocol."""


class CorruptFrameError(ProtocolError):
    """Compressed or encoded frame data is corrupt or truncated.

    ``offset`` is the byte offset in the input where decoding failed, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class MappingError(ConfigError):
    """A trigger map or sequence cannot be compiled or served by the current components."""


class HookError(DransposeError, RuntimeError):
    """User code (a worker or reducer hook) raised; carries the hook name and event number."""

    def __init__(self, hook: str, event_number: int | None, cause: BaseException) -> None:
        where = f" for event {event_number}" if event_number is not None else ""
        super().__init__(f"{hook}{where} raised {type(cause).__name__}: {cause}")
        self.hook = hook
        self.event_number = event_number
        self.cause = cause


class UnpicklingRefused(DransposeError, ValueError):
    """A pickle referenced a global that is not on the allow-list."""


class RedisUnavailable(DransposeError, ConnectionError):
    """Redis cannot be reached at the configured URL."""


class ControlMessageError(ProtocolError):
    """A control or completion message (Redis streams between components) is malformed."""
