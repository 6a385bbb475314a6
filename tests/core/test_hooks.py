"""The hook adapter against the user-class variants found in real payloads (COMPAT §2)."""

from __future__ import annotations

import pytest

from dranspose.errors import ConfigError, HookError
from dranspose.event import EventData
from dranspose.hooks import ReducerHooks, WorkerHooks, load_class

P = "tests.payloads.variants:"


def ev(n: int) -> EventData:
    return EventData(event_number=n, streams={})


def test_keyword_only_init_gets_all_three() -> None:
    h = WorkerHooks(load_class(P + "KwargsOnlyWorker"), {"p": 1}, {}, {"name": "w"})
    assert set(h.instance.kwargs) == {"parameters", "context", "state"}
    assert h.process_event(ev(3), {}, False) == ("kw", 3)


def test_required_parameters_and_context_by_name_and_finish_positional() -> None:
    ctx: dict = {}
    h = WorkerHooks(load_class(P + "RequiredArgsWorker"), {"a": 1}, ctx, {})
    assert ctx["constructed"] == 1 and h.instance.parameters == {"a": 1}
    assert h.process_event(ev(2), {}, True) == ("req", 2, True)
    h.finish({"x": 1})
    assert h.instance.finished_with == {"x": 1}


def test_star_args_init_keyword_finish_and_close() -> None:
    ctx: dict = {}
    h = WorkerHooks(load_class(P + "StarArgsWorker"), {}, ctx, {"name": "w9"})
    assert h.instance.state == {"name": "w9"}
    assert h.process_event(ev(1), {}) is None
    h.finish({"k": 2})
    assert h.instance.finished_kw == {"k": 2}
    h.close(ctx)
    assert ctx["closed"] is True


@pytest.mark.allow_error_log  # bad timer values are logged before the retry
def test_timer_forms_and_bad_values() -> None:
    r = ReducerHooks(load_class(P + "TimerNoArgReducer"), {}, {}, {})
    assert r.has_timer and r.timer({}) == 0.01 and r.instance.calls == 1
    r2 = ReducerHooks(load_class(P + "TimerParamReducer"), {"p": 1}, {}, {})
    assert r2.timer({"p": 1}) == 1.0  # a non-number: retry after 1 s
    assert r2.timer({"p": 1}) == 0.02
    assert r2.instance.seen == [{"p": 1}, {"p": 1}]
    assert r2.publish == {}  # a reducer without publish gets an empty one
    r3 = ReducerHooks(load_class(P + "BrokenTimerReducer"), {}, {}, {})
    assert r3.timer({}) == 1.0  # an exception: logged, retried after 1 s


def test_exceptions_carry_hook_and_event() -> None:
    class Boom:
        def process_event(self, event, parameters, tick):  # type: ignore[no-untyped-def]
            raise KeyError("x")

    h = WorkerHooks(Boom, {}, {}, {})
    with pytest.raises(HookError) as info:
        h.process_event(ev(7), {})
    assert info.value.event_number == 7 and "Boom.process_event" in str(info.value)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value.cause, KeyError)


@pytest.mark.parametrize(
    "path, message",
    [
        ("nope", "package.module:Class"),
        ("tests.payloads.missing_module:X", "cannot import module"),
        ("tests.payloads.variants:Missing", "has no attribute"),
    ],
)
def test_load_class_errors(path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_class(path)


def test_classes_without_required_methods_are_refused() -> None:
    with pytest.raises(ConfigError, match="process_event"):
        WorkerHooks(load_class(P + "TimerNoArgReducer"), {}, {}, {})
    with pytest.raises(ConfigError, match="process_result"):
        ReducerHooks(load_class(P + "KwargsOnlyWorker"), {}, {}, {})
