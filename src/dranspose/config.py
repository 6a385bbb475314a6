"""One settings schema for every component.

Environment variables use the prefix ``DRANSPOSE_`` (``DRANSPOSE_REDIS_URL``); the old names
(``REDIS_URL``, ``SERVICE_REDIS_DSN``, ``INGESTER_URL``, ...) keep working as aliases.
Durations are in seconds. CLI flags override the environment.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated


def _env(name: str, *old: str) -> AliasChoices:
    return AliasChoices(name, f"DRANSPOSE_{name.upper()}", *old)


def _split_list(v: Any) -> Any:
    """Accept a JSON list, a comma-separated string, or a list."""
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            return json.loads(v)
        return [s.strip() for s in v.split(",") if s.strip()]
    return v


StrList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Settings of any dranspose component (unused fields are harmless)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    redis_url: str = Field("redis://localhost:6379/0", validation_alias=_env("redis_url", "REDIS_URL", "SERVICE_REDIS_DSN"))
    log_level: str = Field("INFO", validation_alias=_env("log_level", "LOG_LEVEL"))
    log_forward_level: str = Field(
        "INFO",
        validation_alias=_env("log_forward_level"),
        description="records at or above this level (any logger, incl. the payload's) go to /api/v1/logs",
    )
    build_meta_file: str | None = Field(None, validation_alias=_env("build_meta_file", "BUILD_META_FILE"))
    advertise_host: str | None = Field(
        None,
        validation_alias=_env("advertise_host"),
        description="host name others use to reach this component when it binds 0.0.0.0/* (default: the host name)",
    )

    # controller
    cors_origins: StrList = Field(
        default_factory=lambda: ["*"],
        validation_alias=_env("cors_origins"),
        description="origins browsers may call the controller API from (JSON list or comma-separated; empty: no CORS)",
    )

    # ingester
    ingester_name: str | None = Field(None, validation_alias=_env("ingester_name", "INGESTER_NAME"))
    ingester_url: str = Field("tcp://localhost:10000", validation_alias=_env("ingester_url", "INGESTER_URL"))
    ingester_streams: StrList = Field(default_factory=list, validation_alias=_env("ingester_streams", "INGESTER_STREAMS"))
    upstream_url: str | None = Field(None, validation_alias=_env("upstream_url", "UPSTREAM_URL"))
    ingester_class: str | None = Field(None, validation_alias=_env("ingester_class", "INGESTER_CLASS"))
    dump_path: str | None = Field(
        None, validation_alias=_env("dump_path", "DUMP_PATH"), description="record to exactly this file (appended; wins over dump_prefix)"
    )
    dump_root: str | None = Field(
        None, validation_alias=_env("dump_root"), description="every dump file must resolve under this directory (default: working directory)"
    )
    dump_max_bytes: int = Field(
        100 * 10**9, gt=0, validation_alias=_env("dump_max_bytes"), description="size cap of one dump file in bytes"
    )

    # worker
    worker_name: str | None = Field(None, validation_alias=_env("worker_name", "WORKER_NAME"))
    worker_class: str | None = Field(None, validation_alias=_env("worker_class", "WORKER_CLASS"))
    worker_tags: StrList = Field(default_factory=lambda: ["generic"], validation_alias=_env("worker_tags", "WORKER_TAGS"))
    worker_capacity: int | None = Field(
        None,
        ge=1,
        le=4096,
        validation_alias=_env("worker_capacity"),
        description="fixed events in flight per worker (credits); unset: sized from the measured round trip and rate",
    )

    # reducer
    reducer_url: str = Field("tcp://localhost:10200", validation_alias=_env("reducer_url", "REDUCER_URL"))
    reducer_class: str | None = Field(None, validation_alias=_env("reducer_class", "REDUCER_CLASS"))
    pickle_allow: StrList = Field(
        default_factory=list,
        validation_alias=_env("pickle_allow"),
        description="extra result classes ('module:Name', or a module: the classes it defines) the reducer and replay may unpickle",
    )

    feedback_url: str | None = Field(
        None, validation_alias=_env("feedback_url"), description="reducer: also publish feedback on this ZeroMQ PUB address"
    )
    # mirroring publish into HSDS (reducer); unset domain = no mirror
    hsds_domain: str | None = Field(None, validation_alias=_env("hsds_domain"))
    hsds_endpoint: str | None = Field(None, validation_alias=_env("hsds_endpoint", "HS_ENDPOINT"))
    hsds_username: str | None = Field(None, validation_alias=_env("hsds_username", "HS_USERNAME"))
    hsds_password: str | None = Field(None, validation_alias=_env("hsds_password", "HS_PASSWORD"))
    hsds_bucket: str | None = Field(None, validation_alias=_env("hsds_bucket", "HS_BUCKET"))
    hsds_subtree: str | None = Field(None, validation_alias=_env("hsds_subtree"))
    hsds_interval: float | None = Field(None, validation_alias=_env("hsds_interval"))

    # flow control (controller): the ceiling of a worker's adaptive credits, in payload bytes
    inflight_bytes: int = Field(
        256 << 20, ge=1 << 16, validation_alias=_env("inflight_bytes"), description="payload bytes in flight per worker at most"
    )
    # security: ZeroMQ CURVE on the data sockets (a zmq certificate file with the secret key)
    curve_key_file: str | None = Field(None, validation_alias=_env("curve_key_file"), description="pipeline CURVE key pair")

    # timing
    worker_wait_timeout: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("worker_wait_timeout"),
        description="controller: seconds a scan waits with no usable worker before it ends as failed",
    )
    heartbeat_interval: float = Field(0.5, gt=0, validation_alias=_env("heartbeat_interval"))
    presence_ttl: float = Field(3.0, gt=0, validation_alias=_env("presence_ttl"))

    # liveness and fault handling (controller; seconds)
    worker_grace: float = Field(
        5.0, ge=0, validation_alias=_env("worker_grace"),
        description="a worker whose presence expired keeps its place this long before it is declared dead",
    )
    result_wait: float = Field(
        5.0, gt=0, validation_alias=_env("result_wait"),
        description="at the scan's end, wait this long without reducer progress for results still on their way",
    )
    stall_timeout: float = Field(
        10.0, gt=0, validation_alias=_env("stall_timeout"),
        description="events whose frames do not come for this long (nothing processed, no worker busy) fail",
    )
    event_stuck_after: float = Field(
        30.0, gt=0, validation_alias=_env("event_stuck_after"), description="report process_event running longer than this"
    )
    event_timeout: float | None = Field(
        None, gt=0, validation_alias=_env("event_timeout"),
        description="treat a worker whose process_event runs longer than this as dead (unset: only report it)",
    )
    reducer_wait: float = Field(
        30.0, gt=0, validation_alias=_env("reducer_wait"),
        description="a scan with no live reducer for this long at its end fails with a reason",
    )
    # memory bounds (bytes)
    result_queue_bytes: int = Field(
        256 << 20, ge=1 << 16, validation_alias=_env("result_queue_bytes"),
        description="worker: results waiting for the reducer; above it the worker stops taking events",
    )
    unit_queue_bytes: int = Field(
        256 << 20, ge=1 << 16, validation_alias=_env("unit_queue_bytes"),
        description="ingester: cut units waiting for assignments, per stream",
    )
    reducer_stall_report: float = Field(
        5.0, gt=0, validation_alias=_env("reducer_stall_report"),
        description="worker: report a reducer that takes no results for this long",
    )

    _split = field_validator("ingester_streams", "worker_tags", "pickle_allow", "cors_origins", mode="before")(_split_list)
