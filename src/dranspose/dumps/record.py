"""Recording what an ingester forwards into a dump file, off the hot path.

``Recorder.record`` is called on the ingester's hot path: it only puts references to the
frames on a bounded queue (no copy, no I/O, never blocks, never raises). A writer thread
encodes and writes the items (PROTOCOLS §0.3, 3-element form with tag 55799). The frames must
not be written to by anyone while queued (ZeroMQ frames and bytes are immutable in practice).

If the queue is full (the disk cannot keep up) or a write fails (disk full, permissions), the
recorder logs once, sets ``error``, counts every later event as ``dropped`` and stops recording:
the scan goes on. Thread-safety: ``record`` may be called from one thread at a time (the ingester
loop); the properties may be read from any thread.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
from typing import IO, Any, Mapping, Sequence

from dranspose.dumps.dumpfile import Frame, encode_dump_item, write_chunks

log = logging.getLogger(__name__)

_STOP = object()


def dump_path(prefix: str, ingester_name: str, mapping_uuid: Any) -> str:
    """The dump file name for one scan: ``{prefix}{ingester_name}-{mapping_uuid}.cbors``."""
    return f"{prefix}{ingester_name}-{mapping_uuid}.cbors"


class Recorder:
    """Writes ``record()``-ed events to ``path`` from a background thread.

    ``max_queue`` bounds the number of queued events and ``max_bytes`` their payload bytes.
    The file is opened for appending (an existing dump is never truncated: a restarted
    ingester, or ``DUMP_PATH`` across scans, adds to it); once it would grow beyond
    ``max_file_bytes`` recording stops with an error (the scan goes on).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_queue: int = 4096,
        max_bytes: int = 1 << 30,
        max_file_bytes: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._max_file_bytes = max_file_bytes
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._max_bytes = max_bytes
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._recorded = 0
        self._written_bytes = 0
        self._dropped = 0
        self._error: str | None = None
        self._stopped = False  # set on the caller's side once recording has stopped
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"recorder-{os.path.basename(self.path)}", daemon=True)
        self._thread.start()

    # -- caller side (hot path)
    def record(self, event_number: int, streams: Mapping[str, tuple[str, Sequence[Frame]]]) -> None:
        """Queue one event's frames (name -> (typ, frames)). Cheap; never blocks or raises."""
        if self._stopped or self._closed:
            self._dropped += 1
            return
        try:
            size = sum(_nbytes(f) for _, frames in streams.values() for f in frames)
            with self._lock:
                if self._pending_bytes + size > self._max_bytes and self._pending_bytes > 0:
                    raise queue.Full
                self._pending_bytes += size
            created = datetime.datetime.now(datetime.timezone.utc)
            item = (event_number, {k: (typ, list(frames)) for k, (typ, frames) in streams.items()}, created, size)
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                with self._lock:
                    self._pending_bytes -= size
                raise
        except queue.Full:
            self._fail(f"recording queue full at event {event_number} (writing {self.path} is too slow)")
            self._dropped += 1
        except Exception as exc:  # a malformed frame list must not reach the caller
            self._fail(f"cannot record event {event_number}: {exc!r}")
            self._dropped += 1

    def _fail(self, message: str) -> None:
        if self._error is None:
            self._error = message
            log.error("recording stopped: %s", message)
        self._stopped = True

    # -- writer thread
    def _run(self) -> None:
        fp: IO[bytes] | None = None
        file_size = 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)  # never O_TRUNC
            fp = os.fdopen(fd, "ab", buffering=1 << 20)
            file_size = os.fstat(fd).st_size
        except OSError as exc:
            self._fail(f"cannot open {self.path}: {exc}")
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            event_number, streams, created, size = item
            with self._lock:
                self._pending_bytes -= size
            if fp is None:
                with self._lock:
                    self._dropped += 1
                continue
            try:
                chunks = encode_dump_item(event_number, streams, created)
                item_bytes = sum(c.nbytes if isinstance(c, memoryview) else len(c) for c in chunks)
                if self._max_file_bytes is not None and file_size + item_bytes > self._max_file_bytes:
                    self._fail(f"{self.path} reached its size cap of {self._max_file_bytes} bytes at event {event_number}")
                    with self._lock:
                        self._dropped += 1
                    continue
                written = write_chunks(fp, chunks)
                file_size += written
                self._written_bytes += written
                self._recorded += 1
            except Exception as exc:
                self._fail(f"writing {self.path} failed at event {event_number}: {exc}")
                with self._lock:
                    self._dropped += 1
                _close_quietly(fp)
                fp = None
        if fp is not None:
            try:
                fp.close()
            except OSError as exc:
                self._fail(f"closing {self.path} failed: {exc}")

    # -- lifecycle and status
    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, close the file and join the writer thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def recorded(self) -> int:
        """Events written to the file so far."""
        return self._recorded

    @property
    def dropped(self) -> int:
        """Events not recorded (after an error or a full queue)."""
        return self._dropped

    @property
    def error(self) -> str | None:
        """Why recording stopped, or None while it works."""
        return self._error

    @property
    def written_bytes(self) -> int:
        return self._written_bytes


def _nbytes(frame: Frame) -> int:
    if isinstance(frame, memoryview):
        return frame.nbytes
    return len(frame)


def _close_quietly(fp: IO[bytes]) -> None:
    try:
        fp.close()
    except OSError:
        pass
