"""``dranspose source``: play captures and dumps, or synthesized detector streams, over ZeroMQ.

The streamer binds a PUSH or PUB socket and sends each multipart message exactly as the device
would (no topic frame, parts unchanged), as fast as possible or at a given rate, optionally
looped. It is the load generator of the benchmarks and of the ``combined`` demo.

Python API::

    Streamer(url, pattern="PUSH")            # binds; .endpoint is the bound address
    streamer.wait_for_peer(timeout)          # PUSH: a peer connected; PUB: + slow-joiner delay
    streamer.send(messages, rate=None, loops=1) -> int
    stream_messages(url, messages, pattern="PUSH", rate=None, loops=1) -> int
    synth_stins / synth_eiger_legacy / synth_stream2  (in dranspose.sources.synth)

Buffer ownership: parts are handed to ZeroMQ without copying (``copy=False``); they must not be
modified until the socket is closed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence, Union

import zmq

from dranspose.dumps.dumpfile import read_messages
from dranspose.errors import DransposeError
from dranspose.sources.synth import synth_eiger_legacy, synth_stins, synth_stream2

log = logging.getLogger(__name__)

__all__ = [
    "Streamer",
    "stream_messages",
    "stream_file",
    "synth_stins",
    "synth_eiger_legacy",
    "synth_stream2",
    "configure_parser",
    "run",
]

Message = Sequence[Union[bytes, memoryview, zmq.Frame]]
Messages = Union[Iterable[Message], Callable[[], Iterable[Message]]]


class Streamer:
    """A bound PUSH or PUB socket sending multipart messages. Not thread-safe (one user)."""

    def __init__(
        self,
        url: str,
        pattern: str = "PUSH",
        context: zmq.Context | None = None,
        hwm: int | None = None,
    ) -> None:
        pattern = pattern.upper()
        if pattern not in ("PUSH", "PUB"):
            raise ValueError(f"pattern must be PUSH or PUB, not {pattern!r}")
        self.pattern = pattern
        self._ctx = context or zmq.Context.instance()
        # PUB is an XPUB on our side: identical on the wire, and its subscription messages tell
        # us for sure when a subscriber is ready (no slow-joiner guesswork).
        self.socket = self._ctx.socket(zmq.PUSH if pattern == "PUSH" else zmq.XPUB)
        if hwm is not None:
            self.socket.setsockopt(zmq.SNDHWM, hwm)
        self._monitor = self.socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            self.socket.bind(url[:-2] + ":*" if url.endswith(":0") else url)  # port 0 = any free port
        except zmq.ZMQError as exc:
            self.close(0)
            raise DransposeError(f"cannot bind {pattern} socket to {url}: {exc}") from exc
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.peers = 0

    def wait_for_peer(self, timeout: float | None = 30.0, pub_delay: float = 0.0) -> bool:
        """Wait until a peer is ready: PUSH, a ZMTP handshake completed; PUB, a subscription
        arrived (then ``pub_delay`` more seconds, for further subscribers). False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = self._monitor if self.pattern == "PUSH" else self.socket
        while self.peers == 0:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                return False
            if watch.poll(None if remaining is None else int(remaining * 1000) + 1):
                frames = watch.recv_multipart()
                if self.pattern == "PUB":
                    self.peers += frames[0][:1] == b"\x01"  # subscribe (not unsubscribe)
                elif int.from_bytes(frames[0][:2], "little") == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.peers += 1
        if self.pattern == "PUB" and pub_delay > 0:
            time.sleep(pub_delay)
        return True

    def send(self, messages: Messages, rate: float | None = None, loops: int = 1) -> int:
        """Send every message ``loops`` times (``rate`` messages/s, or as fast as possible).

        ``messages`` may be a callable returning a fresh iterable per loop; a one-shot iterator
        is kept in memory on the first pass when ``loops > 1``. Returns the count sent.
        """
        period = 1.0 / rate if rate else 0.0
        start = time.perf_counter()
        count = 0
        cache: list[Message] | None = None
        for _ in range(max(loops, 0)):
            if callable(messages):
                batch: Iterable[Message] = messages()
            elif cache is not None:
                batch = cache
            elif loops > 1 and not isinstance(messages, Sequence):
                cache = []
                batch = _remember(messages, cache)
            else:
                batch = messages
            for parts in batch:
                if period:
                    delay = start + count * period - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                self.socket.send_multipart(list(parts), copy=False)
                count += 1
        self.sent += count
        return count

    def close(self, linger: float | None = 10.0) -> None:
        """Close, giving queued messages ``linger`` seconds to leave (None: wait forever)."""
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(0)
        self.socket.close(-1 if linger is None else int(linger * 1000))

    def __enter__(self) -> "Streamer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remember(messages: Iterable[Message], cache: list[Message]) -> Iterator[Message]:
    for m in messages:
        cache.append(m)
        yield m


def stream_messages(
    socket_url: str,
    messages: Messages,
    pattern: str = "PUSH",
    rate: float | None = None,
    loops: int = 1,
    peer_timeout: float | None = 60.0,
    pub_delay: float = 0.0,
    linger: float | None = 10.0,
    hwm: int | None = None,
) -> int:
    """Bind ``socket_url``, wait for a peer, send all messages, close; returns the count.

    PUB drops messages beyond the send high-water mark (``hwm``, ZeroMQ default 1000) when a
    subscriber is slow; pass ``hwm=0`` (unbounded, memory permitting) for lossless benchmarks.
    """
    streamer = Streamer(socket_url, pattern, hwm=hwm)
    try:
        if not streamer.wait_for_peer(peer_timeout, pub_delay):
            raise TimeoutError(f"no peer connected to {streamer.endpoint} within {peer_timeout} s")
        return streamer.send(messages, rate, loops)
    finally:
        streamer.close(linger)


def stream_file(socket_url: str, path: str, stream: str | None = None, **kwargs: object) -> int:
    """Stream a raw capture or a dump file (see :func:`dranspose.dumps.dumpfile.read_messages`)."""
    return stream_messages(socket_url, lambda: read_messages(path, stream), **kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """``dranspose source play FILE ...`` and ``dranspose source synth KIND ...``."""
    sub = parser.add_subparsers(dest="source_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-u", "--url", default="tcp://*:9999", help="bind address (default tcp://*:9999)")
    common.add_argument("--pattern", choices=["PUSH", "PUB", "push", "pub"], default="PUSH")
    common.add_argument("--rate", type=float, default=None, help="messages per second (default: as fast as possible)")
    common.add_argument("--loops", type=int, default=1, help="play everything N times")
    common.add_argument("--peer-timeout", type=float, default=None, help="seconds to wait for a peer (default forever)")
    common.add_argument("--hwm", type=int, default=None, help="ZeroMQ send high-water mark")

    play = sub.add_parser("play", parents=[common], help="play a raw capture or an ingester dump")
    play.add_argument("file", help="capture or dump (.cbors, .gz, .pkls)")
    play.add_argument("--stream", help="stream to play from a dump with several streams")

    synth = sub.add_parser("synth", parents=[common], help="synthesize a detector stream")
    synth.add_argument("kind", choices=["stins", "eiger-legacy", "stream2"])
    synth.add_argument("-n", "--count", type=int, default=100, help="images per series")
    synth.add_argument("--shape", type=int, nargs=2, default=[512, 512], metavar=("ROWS", "COLS"))
    synth.add_argument("--dtype", default="uint16")
    synth.add_argument("--compression", default="none", help="none or bslz4")


def run(args: argparse.Namespace) -> int:
    """Run ``dranspose source``; returns the exit status."""
    messages: Callable[[], Iterable[Message]]
    if args.source_command == "play":
        path, stream = args.file, args.stream
        messages = lambda: read_messages(path, stream)  # noqa: E731
    else:
        kind, n, shape, dtype, comp = args.kind, args.count, tuple(args.shape), args.dtype, args.compression
        synth: Callable[..., Iterable[Message]] = {  # type: ignore[assignment]
            "stins": synth_stins,
            "eiger-legacy": synth_eiger_legacy,
            "stream2": synth_stream2,
        }[kind]
        messages = lambda: synth(n, shape, dtype, comp)  # noqa: E731
    streamer = Streamer(args.url, args.pattern, hwm=args.hwm)
    print(f"dranspose source: {args.pattern.upper()} bound at {streamer.endpoint}", file=sys.stderr)
    try:
        if not streamer.wait_for_peer(args.peer_timeout):
            print("dranspose source: no peer connected", file=sys.stderr)
            return 1
        start = time.perf_counter()
        count = streamer.send(messages, args.rate, args.loops)
        elapsed = time.perf_counter() - start
        print(f"dranspose source: sent {count} messages in {elapsed:.2f} s ({count / max(elapsed, 1e-9):.1f}/s)", file=sys.stderr)
        return 0
    except DransposeError as exc:
        print(f"dranspose source: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        streamer.close()
