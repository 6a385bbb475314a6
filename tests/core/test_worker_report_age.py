"""A worker takes its completion reports' age limit from the number of workers the
controller announces with a scan (a real worker object and Redis, no processes of its own)."""

from __future__ import annotations

from dranspose.config import Settings
from dranspose.services.worker import DONE_INTERVAL, MAX_DONE_INTERVAL, Worker
from dranspose.transport import control


def test_announced_workers_set_the_report_age_limit(redis_url: str) -> None:
    worker = Worker("w-age", Settings(redis_url=redis_url), "tests.payloads.recording:RecordingWorker")
    assert worker.report_policy.max_delay_s == DONE_INTERVAL
    worker._on_mapping(control.MappingAnnounced("scan-1", None, 1000))
    assert worker.report_policy.max_delay_s == MAX_DONE_INTERVAL
    worker._on_mapping(control.MappingAnnounced("scan-2", None, 4))
    assert worker.report_policy.max_delay_s == DONE_INTERVAL
