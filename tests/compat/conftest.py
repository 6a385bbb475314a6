"""Compat tests: the marker for tests that make the code log at ERROR on purpose."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_error_log: the test makes the code log at ERROR on purpose")
