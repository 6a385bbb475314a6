"""``dranspose replay``: run a worker and a reducer over recorded data, in one process.

``replay(...)`` keeps the old Python signature and lifecycle (COMPAT §1/§5): build parameters,
``nworkers`` workers and the reducer; serve HDF REST and the parameter API when ``port`` is
given; wait for ``start_event``; process all events in the calling thread; ``finish`` workers
then reducer; set ``done_event`` (on every path, errors included); keep serving until
``stop_event`` is set when one is given. Unlike the old replay, exceptions in user code are
reported and counted and the replay finishes; it returns a :class:`ReplaySummary`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable, Optional, TextIO

from dranspose.dumps.dumpfile import read_dump
from dranspose.errors import ConfigError, DransposeError
from dranspose.hooks import describe_parameters, load_class
from dranspose.replay.engine import NamedSource, ReplayEngine, ReplayFailure, ReplaySummary
from dranspose.replay.params import ParameterSet, read_parameter_file
from dranspose.replay.server import ReplayServer

log = logging.getLogger(__name__)

__all__ = ["replay", "configure_parser", "run", "ReplaySummary", "ReplayFailure", "get_internals"]

PathLike = os.PathLike[Any] | str


def get_internals(filename: PathLike) -> Iterable[Any]:
    """The partial events of one dump file (old name kept for user code)."""
    return read_dump(filename)


def _sources(zmq_files: Optional[Iterable[PathLike]], source: Optional[str]) -> list[NamedSource]:
    named: list[NamedSource] = []
    if source is not None:
        cls = load_class(source)
        try:
            gens = cls().get_source_generators()
        except Exception as exc:
            raise ConfigError(f"source class {source}: get_source_generators() failed: {exc!r}") from exc
        named += [(f"{source}[{i}]", iter(g)) for i, g in enumerate(gens)]
    for f in zmq_files or []:
        if not os.path.exists(f):
            raise ConfigError(f"replay file {os.fspath(f)!r} does not exist")
        named.append((os.fspath(f), iter(read_dump(f))))
    return named


def replay(
    wclass: str,
    rclass: str,
    zmq_files: Optional[list[PathLike]] = None,
    source: Optional[str] = None,
    parameter_file: Optional[PathLike] = None,
    port: Optional[int] = None,
    stop_event: threading.Event | None = None,
    nworkers: int = 2,
    broadcast_first: bool = True,
    done_event: threading.Event | None = None,
    start_event: threading.Event | None = None,
    latency: Optional[float] = None,
    *,
    host: str = "localhost",
    progress: Optional[Callable[[ReplaySummary], None]] = None,
    on_serving: Optional[Callable[[int], None]] = None,
    cancel: threading.Event | None = None,
) -> ReplaySummary:
    """Replay dumps (``zmq_files``) and/or a source class through ``wclass`` and ``rclass``.

    ``wclass``/``rclass``/``source`` are ``"module:Class"`` paths. Raises ConfigError for bad
    classes, files or ports (``done_event`` is still set). ``on_serving(port)`` is called once
    the HTTP server accepts connections (useful with ``port=0``); setting ``cancel`` ends the
    event loop early (``finish`` still runs).
    """
    server: ReplayServer | None = None
    engine: ReplayEngine | None = None
    mirror = None
    try:
        wcls, rcls = load_class(wclass), load_class(rclass)
        raw = read_parameter_file(parameter_file) if parameter_file is not None else {}
        params = ParameterSet([describe_parameters(wcls), describe_parameters(rcls)], raw)
        sources = _sources(zmq_files, source)
        from dranspose.config import Settings

        # the reducer's extra result classes (DRANSPOSE_PICKLE_ALLOW) apply to replay as well
        engine = ReplayEngine(wcls, rcls, params, nworkers, broadcast_first, latency, progress, Settings().pickle_allow)
        if port is not None:
            server = ReplayServer(engine.reducer, params, port, host, feedback=engine.feedback)
            server.start()
            if on_serving is not None:
                on_serving(server.port)
        mirror = _hsds_mirror(engine.reducer)
        if start_event is not None:
            start_event.wait()
        summary = engine.run(sources, cancel)
        if mirror is not None:
            mirror.finish()
        if done_event is not None:
            done_event.set()
        if stop_event is not None:
            stop_event.wait()
        return summary
    finally:
        if done_event is not None:
            done_event.set()
        if mirror is not None:
            mirror.stop()
        if server is not None:
            server.stop()
        if engine is not None:
            engine.close()


def _hsds_mirror(reducer: Any) -> Any:
    """The HSDS mirror of ``publish`` when ``DRANSPOSE_HSDS_DOMAIN`` (etc.) is set, started."""
    from dranspose.config import Settings
    from dranspose.hdfrest.hsds_mirror import HSDSMirror

    mirror = HSDSMirror.from_settings(reducer, Settings())
    if mirror is not None:
        mirror.start()
    return mirror


# ----------------------------------------------------------------------------- CLI


class _ProgressLine:
    """A one-line progress display on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = 0.0
        self.drawn = False

    def __call__(self, s: ReplaySummary) -> None:
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        self.stream.write(
            f"\r  {s.events} events  {s.results} results  {s.errors} errors  "
            f"{s.events_per_s:8.1f} ev/s  {s.mb_per_s:7.1f} MB/s  {s.elapsed:6.1f} s "
        )
        self.stream.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``dranspose replay`` (the old ones plus a few new)."""
    parser.add_argument("-w", "--workerclass", required=True, help="worker class, e.g. 'src.worker:MyWorker'")
    parser.add_argument("-r", "--reducerclass", required=True, help="reducer class, e.g. 'src.reducer:MyReducer'")
    parser.add_argument("-f", "--files", nargs="+", help="ingester dumps (.cbors, .pkls, .gz)")
    parser.add_argument("-s", "--source", help="source class with get_source_generators()")
    parser.add_argument("-p", "--parameters", help="parameter file (JSON, CBOR or pickle; detected by content)")
    parser.add_argument("--port", type=int, help="serve HDF REST and the parameter API on this port")
    parser.add_argument("--host", default="localhost", help="interface to serve on (default localhost)")
    parser.add_argument("--keep-alive", action="store_true", help="keep serving after the replay until Ctrl-C")
    parser.add_argument("--nworkers", type=int, default=2, help="number of worker objects (default 2)")
    parser.add_argument("--latency", type=float, default=None, help="seconds to sleep between events")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")


def run(args: argparse.Namespace) -> int:
    """Run ``dranspose replay``; exit status 0 when no error occurred, 1 otherwise."""
    if not args.files and not args.source:
        print("dranspose replay: give dump files (-f) or a source class (-s)", file=sys.stderr)
        return 2
    show = sys.stderr.isatty() and not getattr(args, "no_progress", False)
    bar = _ProgressLine(sys.stderr) if show else None
    stop = threading.Event() if args.keep_alive else None
    serving: list[int] = []
    try:
        summary = _run_cli_replay(args, bar, stop, serving)
    except DransposeError as exc:
        if bar is not None:
            bar.end()
        print(f"dranspose replay: {exc}", file=sys.stderr)
        return 2
    print(summary.format(), file=sys.stderr)
    for failure in summary.failures:
        print(f"  error: {failure}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.errors else 0


def _run_cli_replay(
    args: argparse.Namespace, bar: _ProgressLine | None, stop: threading.Event | None, serving: list[int]
) -> ReplaySummary:
    done = threading.Event()
    result: list[ReplaySummary] = []
    errors: list[BaseException] = []

    def announce(port: int) -> None:
        serving.append(port)
        print(f"serving HDF REST and parameters on http://{args.host}:{port}", file=sys.stderr)

    cancel = threading.Event()
    finished = threading.Event()  # not Thread.join: an interrupted join can lose track (3.11)

    def target() -> None:
        try:
            result.append(
                replay(
                    args.workerclass,
                    args.reducerclass,
                    zmq_files=args.files,
                    source=args.source,
                    parameter_file=args.parameters,
                    port=args.port,
                    stop_event=stop,
                    nworkers=args.nworkers,
                    done_event=done,
                    latency=args.latency,
                    host=args.host,
                    progress=bar,
                    on_serving=announce,
                    cancel=cancel,
                )
            )
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="replay", daemon=True)
    thread.start()
    try:
        while not done.wait(0.5):
            pass
        if bar is not None:
            bar.end()
        if stop is not None and not errors:
            print("replay done; serving until Ctrl-C", file=sys.stderr)
            while not finished.wait(0.5):
                pass
    except KeyboardInterrupt:
        cancel.set()
        if bar is not None:
            bar.end()
    finally:
        if stop is not None:
            stop.set()
        while not finished.wait(0.5):
            pass
    if errors:
        raise errors[0]
    return result[0]
