"""A worker counts the events whose frames reached it before their assignment, and how long
they waited for it (a real worker object and Redis, no processes of its own)."""

from __future__ import annotations

import time

from dranspose.config import Settings
from dranspose.services.worker import Worker
from dranspose.transport import control, framing


def _part(event: int) -> list[bytes]:
    return [framing.encode_header(event, [("det", "STINS", 1)], "scan-1"), b"frame"]


def test_frames_before_their_assignment_wait_for_it(redis_url: str) -> None:
    worker = Worker("w-wait", Settings(redis_url=redis_url), "tests.payloads.recording:RecordingWorker")
    worker._on_mapping(control.MappingAnnounced("scan-1", None, 1))
    worker._accept(_part(0))  # the frame first: it waits for the assignment
    assert worker.processed == 0 and worker.state()["assignment_waits"] == 0
    time.sleep(0.05)
    worker._on_assignment(control.AssignmentBatch("scan-1", [(0, {"det": ("w-wait",)})]))
    st = worker.state()
    assert worker.processed == 1 and st["assignment_waits"] == 1
    assert 0.05 <= st["assignment_wait_s"] < 5.0

    worker._on_assignment(control.AssignmentBatch("scan-1", [(1, {"det": ("w-wait",)})]))
    worker._accept(_part(1))  # announced first: processed as it comes, nothing waited
    st = worker.state()
    assert worker.processed == 2 and st["assignment_waits"] == 1 and st["assignment_wait_s"] < 5.0


def test_a_whole_part_is_processed_before_its_assignment(redis_url: str) -> None:
    """The ingester says the part is all this worker gets of the event: it is processed at
    once, the assignment read later leaves nothing outstanding, and the completion is reported
    once (a real worker object and Redis)."""
    worker = Worker("w-whole", Settings(redis_url=redis_url), "tests.payloads.recording:RecordingWorker")
    worker._on_mapping(control.MappingAnnounced("scan-1", None, 1))
    whole = [framing.encode_header(0, [("det", "STINS", 1)], "scan-1", whole=True), b"frame"]
    worker._accept(whole)
    assert worker.processed == 1 and worker.done == [0]
    worker._on_assignment(control.AssignmentBatch("scan-1", [(0, {"det": ("w-whole",)})]))
    assert worker.processed == 1 and worker.assembler.outstanding() == [] and not worker.assembler.ahead
    st = worker.state()
    assert st["assignment_waits"] == 0
    worker._accept(_part(1))  # not whole: waits for its assignment as before
    assert worker.processed == 1
    worker._on_assignment(control.AssignmentBatch("scan-1", [(1, {"det": ("w-whole",)})]))
    assert worker.processed == 2 and worker.done == [0, 1]
