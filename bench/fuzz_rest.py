"""REST fuzzing: schemathesis cases from the OpenAPI documents of the controller, the reducer
and replay, sent over real HTTP to the real apps; any 5xx (or a dropped connection) is a
failure. The test suite runs a bounded pass (tests/security/test_rest_fuzz.py); this script
runs a longer one and prints the count.

    python bench/fuzz_rest.py                    # 2000 cases per operation
    python bench/fuzz_rest.py --examples 200     # quicker

Every app runs with an API token and the fuzzer sends it, so the cases reach the handlers
(without it every mutating call would stop at the 401).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message="Duplicate Operation ID")  # HDF REST: GET and OPTIONS share handlers

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "src", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

TOKEN = "fuzz-token"
STREAMING = {"/api/v1/log_stream"}  # a response that never ends by design (server-sent events)


@dataclass
class FuzzReport:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, status: int) -> None:
        self.cases += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


def fuzz_app(name: str, schema_doc: dict[str, Any], base_url: str, examples: int, report: FuzzReport) -> None:
    """Send ``examples`` generated cases per operation of ``schema_doc`` to ``base_url``."""
    import requests
    import schemathesis

    schema = schemathesis.openapi.from_dict(schema_doc)
    session = requests.Session()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING:
            continue
        started, before = time.monotonic(), report.cases
        _fuzz_operation(name, operation, base_url, examples, report, session, auth)
        if os.environ.get("FUZZ_REST_VERBOSE"):
            print(f"  {name} {operation.method.upper()} {operation.path}: {report.cases - before} cases, {time.monotonic() - started:.1f} s")


def _fuzz_operation(name: str, operation: Any, base_url: str, examples: int, report: FuzzReport, session: Any, auth: dict[str, str]) -> None:
    import requests
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
        except requests.RequestException as exc:
            report.failures.append(f"{name} {operation.method.upper()} {operation.path}: {exc!r}")
            return
        report.add(response.status_code)
        if response.status_code >= 500:
            report.failures.append(f"{name} {case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

    run()


def sample_publish() -> dict[str, Any]:
    return {
        "image": np.arange(64 * 64, dtype=np.float32).reshape(64, 64),
        "series": [float(i) for i in range(100)],
        "label": "fuzz",
        "group": {"counts": np.arange(10), "_attrs": {"unit": "s"}},
    }


def _object_ids(publish: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Ids of the groups and datasets of ``publish`` (as the HDF REST server names them)."""
    from dranspose.hdfrest.ids import object_id

    groups, datasets = [object_id("g", ())], []

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if key.startswith("_") or key.endswith("_attrs"):
                continue
            if isinstance(value, dict):
                groups.append(object_id("g", (*path, key)))
                walk(value, (*path, key))
            else:
                datasets.append(object_id("d", (*path, key)))

    walk(publish, ())
    return groups, datasets


def with_hdfrest_inputs(doc: dict[str, Any], publish: dict[str, Any]) -> dict[str, Any]:
    """The HDF REST routes read ``select`` and their POST body themselves (not in the
    OpenAPI document): describe them, and draw object ids mostly from the served ones, so
    cases reach the selection code instead of stopping at 404."""
    groups, datasets = _object_ids(publish)
    select = {"name": "select", "in": "query", "required": False,
              "schema": {"anyOf": [{"type": "string"}, {"type": "string", "pattern": r"^\[[0-9:,\[\] ]{0,60}\]$"}]}}
    for path, item in doc.get("paths", {}).items():
        ids = datasets if path.startswith("/datasets") else groups if path.startswith("/groups") else None
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param.get("name") == "obj_id" and ids:
                    param["schema"] = {"anyOf": [{"enum": ids}, {"type": "string"}]}
            if path == "/datasets/{obj_id}/value" and method == "get":
                op.setdefault("parameters", []).append(select)
            if path == "/datasets/{obj_id}/value" and method == "post":
                op["requestBody"] = {"content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "select": select["schema"],
                        "points": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]}},
                    }}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                }}
    return doc


@contextmanager
def running_apps(redis_url: str) -> Iterator[dict[str, tuple[dict[str, Any], str]]]:
    """The controller, a reducer and a replay server on loopback: name -> (OpenAPI, URL)."""
    os.environ["DRANSPOSE_API_TOKEN"] = TOKEN
    from dranspose.config import Settings
    from dranspose.replay.params import ParameterSet
    from dranspose.replay.server import build_app
    from dranspose.services.controller import create_app
    from dranspose.services.http import BackgroundServer
    from dranspose.services.reducer import Reducer

    with ExitStack() as stack:
        controller_app = create_app(Settings(redis_url=redis_url))
        controller = BackgroundServer(controller_app).start()
        stack.callback(controller.stop)
        reducer = Reducer("fuzz-reducer", Settings(redis_url=redis_url, reducer_url="tcp://127.0.0.1:0"), http_port=0)
        reducer._empty_publish.update(sample_publish())  # served while no scan runs
        assert reducer.http is not None
        reducer.http.start()
        stack.callback(reducer.http.stop)
        replay_app = build_app({"publish": sample_publish()}["publish"], ParameterSet([], {}))
        replay = BackgroundServer(replay_app).start()
        stack.callback(replay.stop)
        yield {
            "controller": (controller_app.openapi(), controller.url),
            "reducer": (with_hdfrest_inputs(reducer.http.config.app.openapi(), sample_publish()), reducer.http.url),
            "replay": (with_hdfrest_inputs(replay_app.openapi(), sample_publish()), replay.url),
        }


def fuzz_all(redis_url: str, examples: int) -> FuzzReport:
    report = FuzzReport()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Duplicate Operation ID")
        with running_apps(redis_url) as apps:
            for name, (doc, url) in apps.items():
                fuzz_app(name, doc, url, examples, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="cases per operation (default 2000)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    from dranspose.local.redis_server import RedisServer

    t0 = time.monotonic()
    with RedisServer() as server:
        report = fuzz_all(server.url, args.examples)
    elapsed = time.monotonic() - t0
    print(f"fuzz_rest: {report.cases} cases in {elapsed:.0f} s, statuses {dict(sorted(report.by_status.items()))}, "
          f"{len(report.failures)} failures")
    for failure in report.failures[:20]:
        print("  ", failure)
    return 1 if report.failures else 0


if __name__ == "__main__":
    threading.current_thread().name = "fuzz_rest"
    sys.exit(main())
