"""Argument parsing of the component subcommands, one module per component.

Each module has ``configure_parser(parser)`` and ``run(args) -> exit status``; ``dranspose.cli``
registers them explicitly. Modules import the heavy service code only inside ``run``.
The flags and defaults follow the old CLI and the public Helm chart (COMPAT §5).
"""

from __future__ import annotations

import argparse
from typing import Any

from dranspose.config import Settings


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given (not None) winning."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def add_common(parser: argparse.ArgumentParser, *, advertise: bool = False) -> None:
    """Flags every component takes: the Redis URL and, for components that bind, the
    host name they advertise."""
    parser.add_argument("--redis-url", help="Redis URL (env REDIS_URL)")
    if advertise:
        parser.add_argument(
            "--advertise-host",
            help="host name others reach this component by when it binds 0.0.0.0 (env DRANSPOSE_ADVERTISE_HOST; "
            "default: the host of the bind URL, else this machine's host name)",
        )
