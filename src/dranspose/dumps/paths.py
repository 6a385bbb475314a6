"""Where dump files may be written: every dump path is confined under one root.

``dump_prefix`` is settable over REST and ``DUMP_PATH`` comes from the environment; both are
resolved (symlinks and ``..`` included) and must stay under the dump root
(``DRANSPOSE_DUMP_ROOT``; default: the process's working directory). Anything else is refused
with :class:`DumpPathError` (a ``ValueError``: HTTP 400) naming the root.
"""

from __future__ import annotations

import os

from dranspose.errors import ConfigError


class DumpPathError(ConfigError):
    """A dump path resolves outside the configured dump root."""


def dump_root(configured: str | None) -> str:
    """The resolved root (``configured`` or the current directory)."""
    return os.path.realpath(configured or os.getcwd())


def confine(path: str, root: str) -> str:
    """``path`` resolved; DumpPathError unless it lies under ``root`` (already resolved)."""
    if "\x00" in path:
        raise DumpPathError("a dump path must not contain NUL bytes")
    resolved = os.path.realpath(path)
    if os.path.commonpath([resolved, root]) != root:
        raise DumpPathError(
            f"dump path {path!r} resolves to {resolved!r}, outside the dump root {root!r} "
            "(set DRANSPOSE_DUMP_ROOT to allow another directory)"
        )
    return resolved


def check_prefix(prefix: str, root: str) -> None:
    """Validate a ``dump_prefix`` (files are ``{prefix}<name>``); the empty prefix is off."""
    if prefix:
        confine(prefix + "probe", root)
