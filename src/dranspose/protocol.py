"""Compat names of the old ``dranspose.protocol`` module that user code imports."""

from __future__ import annotations

import uuid as _uuid
from typing import Any, NewType

from pydantic import BaseModel, ConfigDict, Field, field_validator

EventNumber = NewType("EventNumber", int)
StreamName = NewType("StreamName", str)
WorkerName = NewType("WorkerName", str)
IngesterName = NewType("IngesterName", str)
WorkerTag = NewType("WorkerTag", str)
VirtualConstraint = NewType("VirtualConstraint", int)
ParameterName = NewType("ParameterName", str)
HashDigest = NewType("HashDigest", str)
MappingUUID = NewType("MappingUUID", _uuid.UUID)

GENERIC_WORKER = WorkerTag("generic")


class WorkParameter(BaseModel):
    """One runtime parameter: raw ``data`` bytes plus the typed ``value`` when declared."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: ParameterName
    data: bytes
    value: Any = None
    uuid: _uuid.UUID = Field(default_factory=_uuid.uuid4)

    @field_validator("data", mode="before")
    @classmethod
    def _str_to_bytes(cls, v: Any) -> Any:
        return v.encode() if isinstance(v, str) else v


class VirtualWorker(BaseModel):
    """A slot in the trigger map: workers with all ``tags``; same ``constraint`` -> same worker.

    ``constraint=None`` means every worker that has the tags (broadcast).
    """

    model_config = ConfigDict(frozen=True)

    tags: frozenset[WorkerTag] = frozenset({GENERIC_WORKER})
    constraint: VirtualConstraint | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_to_set(cls, v: Any) -> Any:
        if isinstance(v, str):
            return frozenset({v})
        return frozenset(v)


class ComponentState(BaseModel):
    """What a component advertises about itself; user classes receive it as ``state``
    (attribute access as in the old ``WorkerState``: ``state.name``; ``state["name"]`` works too)."""

    model_config = ConfigDict(extra="allow")

    name: str
    kind: str = "worker"
    service_uuid: str | None = None
    mapping_uuid: str | None = None
    dranspose_version: str | None = None
    mapreduce_version: Any = None  # BUILD_META_FILE's content (a BuildGitMeta dict when valid)
    parameters_hash: HashDigest | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


WorkerState = ComponentState

_OLD_MODELS = {
    "EnsembleState", "IngesterState", "ReducerState", "WorkerUpdate", "ReducerUpdate", "IngesterUpdate",
    "ControllerUpdate", "BuildGitMeta", "DistributedState", "DistributedStateEnum", "ConnectedWorker", "WorkerTimes",
}


def __getattr__(name: str) -> Any:
    """The old state/update models live in :mod:`dranspose.states` (imported on first use)."""
    if name in _OLD_MODELS:
        from dranspose import states

        return getattr(states, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
