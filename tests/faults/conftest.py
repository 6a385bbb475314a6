"""The deployment the fault tests run on.

``LocalDeployment`` (processes on loopback) by default; another deployment with the same
interface (``start``/``kill``/``restart``/``pause``/``resume`` by component name,
``controller_url``, ``upstream_url``, ``stream``, ``nworkers``, ``reducer_results()``,
``log(name)``, ``get(path)``, ``stop()``) is chosen with ``DRANSPOSE_FAULT_DEPLOYMENT=module:Class``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterator

import pytest

from tests.faults.harness import LocalDeployment


def deployment_class() -> Any:
    spec = os.environ.get("DRANSPOSE_FAULT_DEPLOYMENT")
    if not spec:
        return LocalDeployment
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.fixture
def deployment() -> Iterator[Any]:
    dep = deployment_class()(nworkers=3)
    try:
        yield dep.start()
    finally:
        dep.stop()
