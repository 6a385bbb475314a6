"""schemathesis against the OpenAPI documents of the controller, the reducer and replay,
over real HTTP: no case may get a 5xx or drop the connection (bounded run; the long one is
``bench/fuzz_rest.py``)."""

from __future__ import annotations

import pytest

from bench.fuzz_rest import fuzz_all


@pytest.mark.allow_error_log
def test_rest_apis_never_answer_5xx(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRANSPOSE_API_TOKEN", "placeholder")  # fuzz_all sets its own token
    report = fuzz_all(redis_url, examples=6)
    assert report.cases >= 300
    assert not report.failures, "\n".join(report.failures[:10])
    assert sum(n for status, n in report.by_status.items() if status < 300) >= 50  # cases that reached handlers
