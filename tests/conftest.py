"""Shared fixtures: a real redis-server per test on a free port (no fixed ports), resources that
clean up after themselves (clusters, processes, sockets, streamers), the guard that fails a test
on an unexpected ERROR log record, and the ``e2e`` marker: ``pytest -m "not e2e"`` runs the pure
tests (objects and functions of this process only)."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from dranspose.local.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # payload classes are imported as "tests.payloads.x:Class"
    sys.path.insert(0, str(ROOT))

from dranspose.sources.streamer import Streamer  # noqa: E402
from tests.cluster import (  # noqa: E402
    Cluster, NewStreamer, NewUpstream, ServedReplay, ServeReplay, Spawn, StartCluster, Upstream,
)
from tests.paths import DATA  # noqa: E402


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh private redis-server for one test."""
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def captures() -> Path:
    """The real captures carried in ``tests/data``."""
    return DATA


# ---- resources stopped at teardown, whatever the test did


@pytest.fixture
def exit_stack() -> Iterator[contextlib.ExitStack]:
    """An :class:`~contextlib.ExitStack` closed at teardown: ``enter_context(cm)`` for context
    managers, ``callback(fn)`` for anything else a test must stop or undo."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def start_cluster(redis_url: str) -> Iterator[StartCluster]:
    """``start_cluster(worker_class, reducer_class, streams, **kw)``: a started in-process
    :class:`~tests.cluster.Cluster` on this test's Redis; every one is stopped at teardown."""
    made: list[Cluster] = []

    def start(worker_class: str, reducer_class: str, streams: dict[str, tuple[Any, ...]], **kw: Any) -> Cluster:
        cluster = Cluster(redis_url, worker_class, reducer_class, streams, **kw)
        made.append(cluster)  # before start(): a half-started cluster is stopped too
        return cluster.start()

    yield start
    for cluster in reversed(made):
        cluster.stop()


@pytest.fixture
def new_upstream() -> Iterator[NewUpstream]:
    """``new_upstream()``: a device stand-in (PUSH bound on a random loopback port), closed at teardown."""
    made: list[Upstream] = []

    def new() -> Upstream:
        made.append(Upstream())
        return made[-1]

    yield new
    for up in made:
        up.close()


@pytest.fixture
def new_streamer() -> Iterator[NewStreamer]:
    """``new_streamer(endpoint, pattern, **kw)``: a :class:`Streamer`, closed at teardown."""
    made: list[Streamer] = []

    def new(endpoint: str = "tcp://127.0.0.1:0", pattern: str = "PUSH", **kw: Any) -> Streamer:
        made.append(Streamer(endpoint, pattern, **kw))
        return made[-1]

    yield new
    for s in made:
        s.close(0)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``spawn(args, **popen_kw)``: a subprocess (text mode unless told), stopped at teardown if
    still running (SIGTERM, then SIGKILL after 10 s)."""
    procs: list[subprocess.Popen[str]] = []

    def start(args: list[str], **kw: Any) -> subprocess.Popen[str]:
        kw.setdefault("text", True)
        procs.append(subprocess.Popen(args, **kw))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.communicate(timeout=10)  # reap it and close the pipes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.fixture
def serve_replay() -> Iterator[ServeReplay]:
    """``serve_replay(worker_class, reducer_class, *args, **kw)``: :func:`dranspose.replay.replay`
    serving HDF REST on a free port in a thread; returns once it serves (after the dump is
    replayed); stopped at teardown."""
    from dranspose.replay import replay

    served: list[ServedReplay] = []

    def start(*args: Any, **kw: Any) -> ServedReplay:
        done, stop, ports, summary = threading.Event(), threading.Event(), [], []  # type: ignore[var-annotated]
        kw.update(port=0, on_serving=ports.append, done_event=done, stop_event=stop)
        thread = threading.Thread(target=lambda: summary.append(replay(*args, **kw)), daemon=True, name="replay")
        served.append(ServedReplay("", thread, stop, summary))  # stopped at teardown even if it fails
        thread.start()
        assert done.wait(30) and ports, "the replay did not start serving in 30 s"
        served[-1].url = f"http://localhost:{ports[0]}"
        return served[-1]

    yield start
    for s in served:
        s.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Processes the tests start must stop on SIGINT as they do from a terminal (the tests of
    Ctrl-C send it). A shell without job control starts a background command (``make test &``)
    with SIGINT ignored, and an ignored signal stays ignored in every child: take it back here,
    in the test run only, so that the children start with the default action."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# ---- pure tests apart from end-to-end ones

#: fixtures that start Redis, the pipeline, a replay, a server or a process: tests using one
#: (directly or through another fixture) are end-to-end; others mark themselves ``e2e``
E2E_FIXTURES = frozenset({"redis_url", "start_cluster", "spawn", "serve_replay", "hsds", "live", "live_module", "h5pyd018_python",
                           "chart_loopback", "chart_netns"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def pure_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked ``e2e`` that starts a process fails: it is end-to-end, mark it so."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        pytest.fail(f"{request.node.nodeid} starts a process ({args!r:.80}) but is not marked e2e", pytrace=False)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


# ---- no unexpected ERROR log records


class ErrorRecords(logging.Handler):
    """Collects the ERROR (and worse) records logged in this process during one test."""

    #: loggers that do not propagate to the root (uvicorn logs ASGI exceptions on its own)
    EXTRA = ("uvicorn", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not any(r is record for r in self.records):  # seen once per logger it passes
            self.records.append(record)

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return [f"{r.name}: {r.getMessage()}"[:300] for r in taken]


ERROR_RECORDS = pytest.StashKey[ErrorRecords]()


def _fail_on(records: list[str], when: str) -> None:
    if records:
        listed = "\n  ".join(records[:10])
        pytest.fail(
            f"{len(records)} unexpected ERROR log record(s) {when} (mark the test "
            f"@pytest.mark.allow_error_log if the test provokes them):\n  {listed}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def fail_on_error_log(request: pytest.FixtureRequest) -> Iterator[ErrorRecords]:
    """Fails the test when code in this process logs at ERROR or above, unless the test is marked
    ``@pytest.mark.allow_error_log``. Records logged by the test body fail the test itself
    (see ``pytest_runtest_call``); records logged while fixtures tear down fail the teardown."""
    handler = ErrorRecords()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ErrorRecords.EXTRA)]
    for lg in loggers:
        lg.addHandler(handler)
    request.node.stash[ERROR_RECORDS] = handler
    try:
        yield handler
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    if request.node.get_closest_marker("allow_error_log") is None:
        _fail_on(handler.take(), "while tearing down")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield  # re-raises when the test itself failed
    handler = item.stash.get(ERROR_RECORDS, None)
    if handler is not None and item.get_closest_marker("allow_error_log") is None:
        _fail_on(handler.take(), "during the test")
    return result
