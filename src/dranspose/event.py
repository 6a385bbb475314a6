"""Event data classes users receive and return (compat with ``dranspose.event``).

Ownership: ``StreamData.frames`` are the ZeroMQ frames as received (``zmq.Frame``, zero-copy)
or ``bytes`` when read from files. They stay valid as long as the object is referenced; user
code must not write into them.
"""

from __future__ import annotations

import datetime
from typing import Any, TypeVar

import zmq
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from dranspose.backend import build_model
from dranspose.protocol import EventNumber, HashDigest, StreamName, WorkerName


_M = TypeVar("_M", bound=BaseModel)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class StreamData(BaseModel):
    """The frames of one stream in one event; ``typ`` names the protocol (e.g. ``STINS``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    typ: str
    frames: list[zmq.Frame] | list[bytes]

    @field_validator("frames", mode="before")
    @classmethod
    def _coerce_frames(cls, v: Any) -> Any:
        return [f.encode() if isinstance(f, str) else f for f in v]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def length(self) -> int:
        return len(self.frames)

    def get_bytes(self) -> "StreamData":
        """A copy whose frames are ``bytes`` (for pickling and dumping)."""
        frames = [f.bytes if isinstance(f, zmq.Frame) else bytes(f) for f in self.frames]
        return StreamData.model_construct(typ=self.typ, frames=frames)


class EventData(BaseModel):
    """One event as ``process_event`` receives it: every stream's frames for ``event_number``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    streams: dict[StreamName, StreamData]
    created_at: datetime.datetime | None = None  # when the first ingester received it

    @classmethod
    def from_internals(cls, msgs: list["InternalWorkerMessage"]) -> "EventData":
        """Merge partial events (one per ingester) of the same event number."""
        if not msgs:
            raise ValueError("cannot build an event from no messages")
        streams: dict[StreamName, StreamData] = {}
        for msg in msgs:
            if msg.event_number != msgs[0].event_number:
                raise ValueError(
                    f"partial events of different numbers: {msgs[0].event_number} and {msg.event_number}"
                )
            streams.update(msg.streams)
        return cls.model_construct(event_number=msgs[0].event_number, streams=streams)


class InternalWorkerMessage(BaseModel):
    """A partial event as an ingester sends it to a worker (and as dumps store it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    streams: dict[StreamName, StreamData] = Field(default_factory=dict)
    created_at: datetime.datetime = Field(default_factory=_utcnow)

    def get_all_frames(self) -> list[zmq.Frame | bytes]:
        return [frame for stream in self.streams.values() for frame in stream.frames]


class ResultData(BaseModel):
    """What a worker sends to the reducer for one event."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    worker: WorkerName
    parameters_hash: HashDigest | None = None
    payload: Any = None


# ---- building models on the hot path (three per event)
_build = build_model  # compiled (_fastpath.eventframes.build) or its reference twin
_FAST: set[type[BaseModel]] = set()


def construct(cls: type[_M], **values: Any) -> _M:
    """``cls.model_construct(**values)`` for values already known to be right, every field
    given in field order, at a fraction of its cost: the instance pydantic would build, without
    its per-call walk over the fields. Classes for which :func:`_verify` did not find the two
    identical take ``model_construct``. ``values`` becomes the instance's ``__dict__`` (owned by it)."""
    if cls not in _FAST:
        return cls.model_construct(**values)
    return _build(cls, values)  # type: ignore[no-any-return]


def builds_fast(cls: type[BaseModel]) -> bool:
    """Does :func:`construct` build ``cls`` without ``model_construct`` (found identical)?"""
    return cls in _FAST


def _verify(cls: type[BaseModel], values: dict[str, Any]) -> bool:
    """Does :func:`construct` build what ``model_construct`` builds for ``cls`` (this pydantic)?"""
    if cls.__pydantic_post_init__ is not None or cls.__private_attributes__ or cls.__pydantic_root_model__:
        return False
    slow = cls.model_construct(**values)
    _FAST.add(cls)
    try:
        fast = construct(cls, **dict(values))
    finally:
        _FAST.discard(cls)
    same = all(
        getattr(fast, name, None) == getattr(slow, name, None)
        for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    )
    return same and list(fast.__dict__.items()) == list(slow.__dict__.items()) and fast == slow and repr(fast) == repr(slow)


# ---- CBOR hooks of the old API (dump files, PROTOCOLS §0.3): cbor2.dump(msg, fp, default=
# message_encoder) and cbor2.load(fp, tag_hook=message_tag_hook) as user scripts call them.
TAG_MESSAGE = 42877
TAG_STREAM = 42878


def message_encoder(encoder: Any, value: Any) -> None:
    """cbor2 ``default=`` hook: InternalWorkerMessage -> tag 42877, StreamData -> tag 42878."""
    import cbor2

    if isinstance(value, InternalWorkerMessage):
        encoder.encode(cbor2.CBORTag(TAG_MESSAGE, [value.event_number, value.streams, value.created_at]))
    elif isinstance(value, StreamData):
        frames = [f.bytes if isinstance(f, zmq.Frame) else bytes(f) for f in value.frames]
        encoder.encode(cbor2.CBORTag(TAG_STREAM, [value.typ, frames]))
    else:
        raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


def message_tag_hook(*args: Any) -> Any:
    """cbor2 ``tag_hook=``: tags 42877/42878 back to InternalWorkerMessage/StreamData (both the
    2- and 3-element message forms); other tags are returned unchanged.

    cbor2 5.x calls ``hook(decoder, tag)``, 6.x ``hook(tag, immutable)``: both are accepted."""
    import cbor2

    tag = next((a for a in args if isinstance(a, cbor2.CBORTag)), None)
    if tag is None:
        raise TypeError("message_tag_hook: no CBORTag among the arguments")
    value = tag.value
    if tag.tag == TAG_MESSAGE and isinstance(value, (list, tuple)) and len(value) in (2, 3):
        fields: dict[str, Any] = {"event_number": value[0], "streams": dict(value[1])}
        if len(value) == 3 and value[2] is not None:
            fields["created_at"] = value[2]
        return InternalWorkerMessage(**fields)
    if tag.tag == TAG_STREAM and isinstance(value, (list, tuple)) and len(value) == 2:
        return StreamData(typ=value[0], frames=list(value[1]))
    return tag


for _cls, _values in (
    (StreamData, {"typ": "STINS", "frames": [b"x"]}),
    (EventData, {"event_number": 1, "streams": {}, "created_at": None}),
    (ResultData, {"event_number": 1, "worker": "w", "parameters_hash": None, "payload": {"a": 1}}),
):
    if _verify(_cls, _values):
        _FAST.add(_cls)
