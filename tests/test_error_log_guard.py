"""The autouse guard of tests/conftest.py: an unexpected ERROR log record fails the test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
from tests.conftest import fail_on_error_log, pytest_runtest_call  # the guard under test

def pytest_configure(config):
    config.addinivalue_line("markers", "allow_error_log: exempt")
"""

TESTS = """
import logging
import threading

import pytest

log = logging.getLogger("some.component")

def test_clean():
    log.warning("a warning is fine")

def test_error_in_the_test():
    log.error("boom %d", 1)

def test_error_from_another_thread():
    t = threading.Thread(target=lambda: log.critical("thread died"))
    t.start()
    t.join()

def test_uvicorn_logger_does_not_propagate(monkeypatch):
    monkeypatch.setattr(logging.getLogger("uvicorn"), "propagate", False)  # as uvicorn configures it
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")

@pytest.mark.allow_error_log
def test_marked():
    log.error("expected")

@pytest.fixture
def noisy_teardown():
    yield
    log.error("while stopping")

def test_error_in_teardown(noisy_teardown):
    pass
"""


@pytest.mark.e2e  # a whole pytest session
@pytest.mark.allow_error_log  # the inner run logs its errors in this process too
def test_guard_fails_unexpected_errors_and_honours_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_guarded=TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, failed=3, errors=1)
    outcomes = {r.nodeid.split("::")[1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"}
    assert outcomes == {
        "test_clean": "passed",
        "test_error_in_the_test": "failed",
        "test_error_from_another_thread": "failed",
        "test_uvicorn_logger_does_not_propagate": "failed",
        "test_marked": "passed",
        "test_error_in_teardown": "passed",
    }
    result.stdout.fnmatch_lines(["*1 unexpected ERROR log record(s) during the test*", "*some.component: boom 1*"])
    result.stdout.fnmatch_lines(["*unexpected ERROR log record(s) while tearing down*", "*while stopping*"])
