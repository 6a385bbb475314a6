"""``dranspose.event.construct``: the hot path's models are the ones pydantic's
``model_construct`` builds (user code sees no difference), for this pydantic release."""

from __future__ import annotations

import copy
import datetime
import pickle
from typing import Any

import pytest
import zmq
from pydantic import BaseModel, PrivateAttr

from dranspose.event import _FAST, EventData, ResultData, StreamData, construct

CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (StreamData, {"typ": "STINS", "frames": [zmq.Frame(b"head"), zmq.Frame(b"x" * 100)]}),
    (StreamData, {"typ": "EIGER_LEGACY", "frames": [b"a", b"b"]}),
    (EventData, {"event_number": 7, "streams": {"det": StreamData(typ="STINS", frames=[b"x"])},
                 "created_at": datetime.datetime(2026, 12, 4, tzinfo=datetime.timezone.utc)}),
    (EventData, {"event_number": 0, "streams": {}, "created_at": None}),
    (ResultData, {"event_number": 3, "worker": "w1", "parameters_hash": "abc", "payload": {"a": [1, 2]}}),
    (ResultData, {"event_number": 3, "worker": "w1", "parameters_hash": None, "payload": None}),
]


def test_the_hot_path_classes_take_the_fast_way() -> None:
    assert {StreamData, EventData, ResultData} <= _FAST


@pytest.mark.parametrize("cls, values", CASES)
def test_same_instance_as_model_construct(cls: type[BaseModel], values: dict[str, Any]) -> None:
    fast, slow = construct(cls, **dict(values)), cls.model_construct(**values)
    assert type(fast) is cls
    assert fast == slow and repr(fast) == repr(slow)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    if cls is not StreamData or not isinstance(values["frames"][0], zmq.Frame):  # zmq.Frame does not pickle
        assert copy.deepcopy(fast) == slow
        assert pickle.loads(pickle.dumps(fast)) == slow
    if cls is StreamData:
        assert fast.length == slow.length  # computed field


def test_fast_instances_stay_ordinary_models() -> None:
    ev = construct(EventData, event_number=1, streams={}, created_at=None)
    ev.event_number = 2  # assignment works as on any model (no validation on assignment)
    assert ev.event_number == 2 and ev.model_copy(update={"event_number": 5}).event_number == 5


def test_a_class_it_was_not_verified_for_takes_model_construct() -> None:
    class WithPrivate(BaseModel):
        x: int
        _cache: dict[str, int] = PrivateAttr(default_factory=dict)

    m = construct(WithPrivate, x=1)
    assert m.x == 1 and m._cache == {}  # model_construct set up the private attribute
