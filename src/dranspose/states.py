"""The old state and update models (``dranspose.protocol`` of 0.2.x) that analyses, scan
software and dashboards import or validate against: ``EnsembleState`` (the shape of
``GET /api/v1/config``), ``IngesterState``, ``WorkerState``, ``ReducerState``,
``WorkerUpdate``, ``ControllerUpdate``, ``BuildGitMeta``.

These are views: components advertise richer dicts; :func:`ensemble_view` adds the old field
names so the result validates as ``EnsembleState``, keeping every other field.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from enum import Enum
from typing import Annotated, Any, Iterable, Literal, Mapping, Optional

from pydantic import UUID4, BaseModel, Field, UrlConstraints, ValidationError
from pydantic_core import Url

from dranspose.protocol import (
    GENERIC_WORKER,
    EventNumber,
    HashDigest,
    IngesterName,
    ParameterName,
    StreamName,
    WorkerName,
    WorkerTag,
)

ZmqUrl = Annotated[Url, UrlConstraints(allowed_schemes=["tcp"])]


class DistributedStateEnum(Enum):
    READY = "ready"
    IDLE = "idle"
    FINISHED = "finished"


class BuildGitMeta(BaseModel):
    """What ``BUILD_META_FILE`` holds (the image's analysis repository and commit)."""

    commit_hash: HashDigest
    branch_name: str
    timestamp: datetime.datetime
    repository_url: Url


class DistributedState(BaseModel):
    service_uuid: UUID4 = Field(default_factory=uuid.uuid4)
    mapping_uuid: Optional[UUID4] = None
    dranspose_version: Optional[str] = None
    mapreduce_version: Optional[BuildGitMeta] = None
    parameters_hash: Optional[HashDigest] = None
    processed_events: int = 0
    event_rate: float = 0.0


class ConnectedWorker(BaseModel):
    name: WorkerName
    service_uuid: UUID4
    last_seen: float = Field(default_factory=time.time)


class IngesterState(DistributedState):
    name: IngesterName
    url: ZmqUrl
    connected_workers: dict[UUID4, ConnectedWorker] = {}
    streams: list[StreamName] = []


class WorkerState(DistributedState):
    name: WorkerName
    ingesters: list[IngesterState] = []
    tags: set[WorkerTag] = {GENERIC_WORKER}


class ReducerState(DistributedState):
    name: str = "reducer"
    url: ZmqUrl


class EnsembleState(BaseModel):
    ingesters: list[IngesterState]
    workers: list[WorkerState]
    reducer: Optional[ReducerState]
    controller_version: Optional[str] = None
    parameters_version: dict[ParameterName, UUID4] = {}
    parameters_hash: Optional[HashDigest] = None

    def get_streams(self) -> list[StreamName]:
        """Streams every worker can receive (served by an ingester it is connected to)."""
        served = {s for i in self.ingesters for s in i.streams}
        per_worker = [{s for i in w.ingesters for s in i.streams} for w in self.workers]
        return list(served.intersection(*per_worker))

    def get_workers(self) -> list[WorkerName]:
        return [w.name for w in self.workers]


class ControllerUpdate(BaseModel):
    mapping_uuid: UUID4
    parameters_version: dict[ParameterName, UUID4]
    target_parameters_hash: Optional[HashDigest] = None
    active_streams: list[StreamName] = []
    finished: bool = False


class WorkerTimes(BaseModel):
    get_assignments: float = 0.0
    get_messages: float = 0.0
    assemble_event: float = 0.0
    custom_code: float = 0.0
    send_result: float = 0.0
    no_events: int = 1


class BaseUpdate(BaseModel):
    state: DistributedStateEnum


class WorkerUpdate(BaseUpdate):
    source: Literal["worker"] = "worker"
    completed: list[EventNumber] = []
    worker: WorkerName
    has_result: list[bool] = []
    processing_times: Optional[WorkerTimes] = None


class ReducerUpdate(BaseUpdate):
    source: Literal["reducer"] = "reducer"
    completed: Optional[EventNumber] = None
    worker: Optional[WorkerName] = None


class IngesterUpdate(BaseUpdate):
    source: Literal["ingester"] = "ingester"
    ingester: IngesterName


# ---------------------------------------------------------------- views of our own states


def build_meta(raw: Any) -> dict[str, Any] | None:
    """``raw`` (BUILD_META_FILE's JSON) as a valid BuildGitMeta dict, or None."""
    if not isinstance(raw, Mapping):
        return None
    try:
        return BuildGitMeta.model_validate(raw).model_dump(mode="json")
    except ValidationError:
        return None


def parameter_version(name: str, data: bytes) -> uuid.UUID:
    """A stable version-4-shaped UUID for one parameter value (the old ``parameters_version``)."""
    digest = hashlib.sha256(name.encode() + b"\0" + data).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def _valid_uuid(value: Any) -> str | None:
    try:
        u = uuid.UUID(str(value))
    except ValueError:
        return None
    return str(u) if u.version == 4 else None


def _distributed(st: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(st)
    out["service_uuid"] = _valid_uuid(st.get("service_uuid")) or str(uuid.uuid4())
    out["mapping_uuid"] = _valid_uuid(st.get("mapping_uuid"))
    out.setdefault("dranspose_version", st.get("version"))
    out["mapreduce_version"] = build_meta(st.get("mapreduce_version") or st.get("build"))
    processed = st.get("total_processed", st.get("processed", 0))
    out["processed_events"] = processed if isinstance(processed, int) else 0
    out.setdefault("event_rate", 0.0)
    return out


def ensemble_view(
    ingesters: Iterable[Mapping[str, Any]],
    workers: Iterable[Mapping[str, Any]],
    reducer: Mapping[str, Any] | None,
    *,
    controller_version: str | None,
    parameters: Mapping[str, bytes],
    parameters_hash: str | None,
) -> dict[str, Any]:
    """``/api/v1/config``: the advertised states with the old fields added (validates as
    :class:`EnsembleState`). A worker's ``ingesters`` become the states of the ingesters it is
    connected to (their URLs stay in ``ingester_urls``)."""
    worker_list = [dict(w) for w in workers]
    uuid_of = {w.get("name"): _valid_uuid(w.get("service_uuid")) for w in worker_list}
    ing_out = []
    for st in ingesters:
        d = _distributed(st)
        d["connected_workers"] = {
            uuid_of[n]: {"name": n, "service_uuid": uuid_of[n]} for n in st.get("workers", []) if uuid_of.get(n)
        }
        ing_out.append(d)
    by_url = {i.get("url"): i for i in ing_out}
    work_out = []
    for st in worker_list:
        d = _distributed(st)
        urls = [u for u in st.get("ingesters", []) if isinstance(u, str)]
        d["ingester_urls"] = urls
        d["ingesters"] = [by_url[u] for u in urls if u in by_url]
        work_out.append(d)
    red_out = _distributed(reducer) if reducer is not None else None
    return {
        "ingesters": ing_out,
        "workers": work_out,
        "reducer": red_out,
        "controller_version": controller_version,
        "parameters_version": {n: str(parameter_version(n, v)) for n, v in parameters.items()},
        "parameters_hash": parameters_hash,
    }


def user_state(name: str, kind: str = "worker", **fields: Any) -> Any:
    """The ``state`` object a worker or reducer class receives (live services and replay
    build it here): ``name``, ``kind``, ``dranspose_version``, ``mapreduce_version`` (a
    :class:`BuildGitMeta` when BUILD_META_FILE holds one, else its raw content or None),
    ``parameters_hash``, ``mapping_uuid``, plus whatever else the component advertises."""
    import dranspose
    from dranspose.protocol import ComponentState

    fields = dict(fields)
    raw_meta = fields.pop("build", None)
    meta = fields.pop("mapreduce_version", None) or raw_meta
    try:
        meta = BuildGitMeta.model_validate(meta) if isinstance(meta, Mapping) else meta
    except ValidationError:
        pass
    fields.setdefault("dranspose_version", dranspose.__version__)
    return ComponentState(name=name, kind=kind, mapreduce_version=meta, **fields)


def read_build_meta(path: str | None) -> Any:
    """The JSON content of BUILD_META_FILE (the image's build information), or None."""
    import json
    import logging

    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).warning("cannot read BUILD_META_FILE %s: %s", path, exc)
        return None
