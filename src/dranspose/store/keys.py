"""Every Redis key dranspose uses, built in one place.

``prefix`` separates installations sharing one Redis (default ``dranspose``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "dranspose"

    def members(self, kind: str) -> str:
        """Set of names of the components of one kind (ingester, worker, reducer, controller)."""
        return f"{self.prefix}:members:{kind}"

    def state(self, kind: str, name: str) -> str:
        """A component's advertised state (JSON, with a TTL: its presence)."""
        return f"{self.prefix}:state:{kind}:{name}"

    def updates(self) -> str:
        """Stream of controller announcements: new mapping, parameters changed, finish, stop."""
        return f"{self.prefix}:updates"

    def mapping(self) -> str:
        """The current compiled mapping (JSON with its uuid)."""
        return f"{self.prefix}:mapping"

    def assigned(self, mapping_uuid: str) -> str:
        """Stream of assignment batches of one mapping (event -> stream -> workers)."""
        return f"{self.prefix}:assigned:{mapping_uuid}"

    def done(self, mapping_uuid: str) -> str:
        """Stream of completion batches from workers and the reducer of one mapping."""
        return f"{self.prefix}:done:{mapping_uuid}"

    def parameters(self) -> str:
        """Hash parameter name -> raw bytes."""
        return f"{self.prefix}:parameters"

    def logs(self) -> str:
        """Stream of warning/error log records of every component (capped)."""
        return f"{self.prefix}:logs"
