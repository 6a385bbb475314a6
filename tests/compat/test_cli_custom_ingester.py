"""As deployed: a custom Python ingester (old API, software-triggered stream included), the
old-style payload classes and the payload's own log records, every component a CLI process
with only its own environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import poll_until
from dranspose.local.supervisor import Supervisor
from dranspose.transport.sockets import free_tcp_port

ROOT = str(Path(__file__).resolve().parents[2])


def _wait(cond: Any, what: str, sup: Supervisor, timeout: float = 60) -> None:
    poll_until(cond, what, timeout, interval=0.2, context=lambda: f"exited: {sup.exited()}")


def test_custom_ingester_and_payload_logs_through_cli_processes(redis_url: str) -> None:
    import zmq

    up = zmq.Context.instance().socket(zmq.PUSH)
    up_port = up.bind_to_random_port("tcp://127.0.0.1")
    sup = Supervisor(log_level="WARNING")
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "src"), ROOT]), "REDIS_URL": redis_url,
            "DRANSPOSE_HEARTBEAT_INTERVAL": "0.2", "DRANSPOSE_PRESENCE_TTL": "10", "LOG_LEVEL": "WARNING"}
    reducer_url = f"tcp://127.0.0.1:{free_tcp_port()}"
    ctl, red = free_tcp_port(), free_tcp_port()
    try:
        sup.env = dict(base)
        sup.spawn("controller", "controller", "--host", "127.0.0.1", "--port", str(ctl))
        sup.env = dict(base, REDUCER_URL=reducer_url, REDUCER_CLASS="tests.compat.old_payloads:TimerFitReducer")
        sup.spawn("reducer", "reducer", "--host", "127.0.0.1", "-p", str(red))
        for stream, upstream in (("cam", f"tcp://127.0.0.1:{up_port}"), ("temperature", "tcp://127.0.0.1:9")):
            sup.env = dict(base, INGESTER_URL=f"tcp://127.0.0.1:{free_tcp_port()}")
            sup.spawn(f"ingester-{stream}", "ingester", "-c", "tests.compat.old_payloads:JsonPullIngester", "-u", upstream, "-n", stream)
        for i in range(2):
            sup.env = dict(base, REDUCER_URL=reducer_url, WORKER_CLASS="tests.compat.old_payloads:MeanWorker")
            sup.spawn(f"worker{i}", "worker", "-n", f"w{i}")
        api = f"http://127.0.0.1:{ctl}"

        def ready() -> bool:  # every worker usable: reached by both ingesters, connected to the reducer
            cfg = httpx.get(f"{api}/api/v1/config").json()
            reducer = cfg["reducer"] or {}
            return bool(reducer) and len(cfg["workers"]) == 2 and len(cfg["ingesters"]) == 2 and all(
                len(i["workers"]) == 2 for i in cfg["ingesters"]) and all(
                w.get("reducer_uuid") == reducer.get("service_uuid") for w in cfg["workers"])

        _wait(ready, "pipeline up", sup)
        n = 8
        vw = [[{"tags": ["generic"], "constraint": i % 2}] for i in range(n)]
        assert httpx.post(f"{api}/api/v1/mapping", json={"cam": vw, "temperature": vw}).status_code == 200
        up.send(b"header")
        for i in range(1, n + 1):
            up.send(b"v%d" % i)
        up.send(b"end")
        _wait(lambda: httpx.get(f"{api}/api/v1/progress").json()["finished"], "scan finished", sup, 30)

        # the reducer publishes from its timer only: read what it serves over HDF REST
        def values() -> list[int]:
            r = httpx.get(f"http://127.0.0.1:{red}/api/v1/state").json()
            assert r["total_processed"] == n
            import h5pyd

            with h5pyd.File(f"http://127.0.0.1:{red}/", "r") as f:
                return [int(v) for v in f["values"][:]]

        _wait(lambda: values() == [-1, *range(1, n + 1)], "published values", sup, 20)
        # the workers' own logger records, from other processes, with the old fields
        def temperature_logs() -> list[dict[str, Any]]:
            logs = httpx.get(f"{api}/api/v1/logs", params={"level": "WARNING"}).json()
            return [e for e in logs if e["name"] == "beamline_analysis.worker" and "temperature at event" in e["msg"]]

        _wait(lambda: len(temperature_logs()) >= n, "payload logs", sup, 20)
        assert {e["component"] for e in temperature_logs()} == {"worker:w0", "worker:w1"}
        # software-triggered readings were numbered by the ingester's own generator
        assert all("is 3" in e["msg"] for e in temperature_logs())
    finally:
        sup.stop_all()
        up.close(0)
    assert all(code == 0 for _name, code in sup.exited()), sup.exited()
