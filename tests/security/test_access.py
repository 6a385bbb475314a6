"""Access control of the REST APIs: token, JSON content type, Host check, body limits,
cross-site forms, the exposure warning and redacted secrets. Real HTTP throughout."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dranspose.config import Settings
from dranspose.services.access import AccessPolicy, redact, warn_if_exposed
from dranspose.services.controller import create_app
from dranspose.services.http import BackgroundServer
from dranspose.transport.sockets import free_tcp_port

TOKEN = "s3cret-token"


@pytest.fixture
def controller(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("DRANSPOSE_API_TOKEN", TOKEN)
    server = BackgroundServer(create_app(Settings(redis_url=redis_url))).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def test_token_is_required_for_every_mutating_call(controller: httpx.Client) -> None:
    body = {"a": [[{"tags": ["generic"], "constraint": 0}]]}
    for path, kw in [("/api/v1/mapping", {"json": body}), ("/api/v1/sequence", {"json": {"parts": {}, "sequence": []}}),
                     ("/api/v1/stop", {}), ("/api/v1/parameter/x", {"content": b"1"})]:
        r = controller.post(path, **kw)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        r = controller.post(path, headers={"Authorization": "Bearer wrong"}, **kw)
        assert r.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert controller.post("/api/v1/parameter/x", content=b"1", headers=auth).status_code == 200
    assert controller.get("/api/v1/parameter/x").content == b"1"  # reads need no token
    r = controller.post("/api/v1/mapping", json=body, headers=auth)
    assert r.status_code == 400 and "no ingester" in r.text  # past the checks, refused by the scheduler


def test_json_bodies_must_say_application_json(controller: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = json.dumps({"a": [[]]}).encode()
    for ctype in ["text/plain", "application/x-www-form-urlencoded", None]:
        headers = dict(auth, **({"content-type": ctype} if ctype else {}))
        r = controller.post("/api/v1/mapping", content=body, headers=headers)
        assert r.status_code == 415, (ctype, r.text)


def test_cross_site_forms_are_refused_without_token(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRANSPOSE_API_TOKEN", raising=False)
    server = BackgroundServer(create_app(Settings(redis_url=redis_url))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            evil = {"origin": "http://evil.example", "content-type": "text/plain"}
            assert c.post("/api/v1/parameter/dump_prefix", content=b"/tmp/x", headers=evil).status_code == 403
            assert c.post("/api/v1/stop", headers={"origin": "http://evil.example"}).status_code == 403
            assert c.post("/api/v1/mapping", content=b"{}", headers=evil).status_code == 403
            assert c.post("/api/v1/parameter/p", content=b"1").status_code == 200  # scripts: no Origin
            same = {"origin": server.url, "content-type": "text/plain"}
            assert c.post("/api/v1/parameter/p", content=b"2", headers=same).status_code == 200
    finally:
        server.stop()


def test_host_check_against_dns_rebinding(controller: httpx.Client) -> None:
    assert controller.get("/api/v1/progress", headers={"host": "attacker.example:5000"}).status_code == 400
    for host in ["localhost:5000", "127.0.0.1", "[::1]:80", socket.gethostname()]:
        assert controller.get("/api/v1/progress", headers={"host": host}).status_code == 200, host
    policy = AccessPolicy(allowed_hosts=frozenset({"ctl.beamline"}))
    assert policy.host_allowed("ctl.beamline:5000", via_loopback=False)
    assert not policy.host_allowed("other:5000", via_loopback=False)
    assert AccessPolicy().host_allowed("dranspose-controller.ns.svc:5000", via_loopback=False)  # Kubernetes


def test_body_limits(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRANSPOSE_MAX_BODY_BYTES", "1000")
    monkeypatch.delenv("DRANSPOSE_API_TOKEN", raising=False)
    server = BackgroundServer(create_app(Settings(redis_url=redis_url))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post("/api/v1/parameter/p", content=b"x" * 2000)
            assert r.status_code == 413 and "limit" in r.text
            r = c.post("/api/v1/parameter/p", content=iter([b"x" * 600, b"x" * 600]))  # chunked, no length
            assert r.status_code == 413
            assert c.post("/api/v1/parameter/p", content=b"x" * 900).status_code == 200
    finally:
        server.stop()


def test_trigger_maps_capped_in_events_and_bytes(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dranspose.core import triggermap

    monkeypatch.delenv("DRANSPOSE_API_TOKEN", raising=False)
    monkeypatch.setattr(triggermap, "MAX_MAP_BYTES", 100_000)
    server = BackgroundServer(create_app(Settings(redis_url=redis_url))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            part = {"a": [[{"tags": ["generic"], "constraint": 0}]] * 1000}
            seq = {"parts": {"p": part}, "sequence": ["p"] * 30_000}  # ~190 kB: over the 100 kB cap set here
            t0 = time.monotonic()
            r = c.post("/api/v1/sequence", json={"parts": {"p": part}, "sequence": ["p"] * 5000})
            assert r.status_code == 400 and "5000002 events" in r.text and "DRANSPOSE_MAX_EVENTS" in r.text
            assert time.monotonic() - t0 < 5
            r = c.post("/api/v1/sequence", json=seq)
            assert r.status_code == 400 and "DRANSPOSE_MAX_MAP_BYTES" in r.text
            monkeypatch.setattr(triggermap, "MAX_MAP_BYTES", 1_000_000)
            t0 = time.monotonic()  # the reported map: ~450 kB expanding to 10^9 events
            r = c.post("/api/v1/sequence", json={"parts": {"p": {"a": [None] * 10_000}}, "sequence": ["p"] * 100_000})
            assert r.status_code == 400 and "1000000002 events" in r.text, r.text
            assert time.monotonic() - t0 < 5
    finally:
        server.stop()


def test_exposure_warning(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRANSPOSE_API_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING, logger="dranspose.services.access"):
        warn_if_exposed("controller", "0.0.0.0")
        warn_if_exposed("controller", "127.0.0.1")
        warn_if_exposed("controller", "localhost")
    assert len(caplog.records) == 1 and "without an API token" in caplog.text
    caplog.clear()
    monkeypatch.setenv("DRANSPOSE_API_TOKEN", "x")
    with caplog.at_level(logging.WARNING, logger="dranspose.services.access"):
        warn_if_exposed("controller", "0.0.0.0")
    assert not caplog.records


def test_token_from_file(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text("from-file\n")
    policy = AccessPolicy.from_env({"DRANSPOSE_API_TOKEN_FILE": str(f)})
    assert policy.authorized("Bearer from-file") and not policy.authorized("Bearer other") and not policy.authorized("")


def test_secrets_redacted_in_config(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url)
    app = create_app(settings)
    settings.redis_url = redis_url.replace("redis://", "redis://:hunter2@")  # shown, not used again
    server = BackgroundServer(app).start()
    try:
        cfg = httpx.get(f"{server.url}/api/v1/config", timeout=10).json()
        assert "hunter2" not in json.dumps(cfg) and "***" in cfg["controller"]["redis_url"]
    finally:
        server.stop()
    assert redact({"hsds_password": "p", "nested": [{"url": "http://u:pw@h/"}]}) == {"hsds_password": "***", "nested": [{"url": "http://u:***@h/"}]}


def test_controller_cli_enforces_the_token(redis_url: str, tmp_path: Path) -> None:
    """As deployed: ``dranspose controller`` with only its own environment (token from a file)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = free_tcp_port()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "REDIS_URL": redis_url,
           "DRANSPOSE_API_TOKEN_FILE": str(token_file), "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "dranspose.cli", "controller", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/api/v1/progress", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert httpx.post(f"{url}/api/v1/stop").status_code == 401
        assert httpx.post(f"{url}/api/v1/stop", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_reducer_and_replay_apps_require_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from dranspose.replay.params import ParameterSet
    from dranspose.replay.server import build_app

    monkeypatch.setenv("DRANSPOSE_API_TOKEN", TOKEN)
    source: dict[str, Any] = {"data": list(range(10))}
    server = BackgroundServer(build_app(source, ParameterSet([], {}))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            assert c.post("/api/v1/parameter/x", content=b"1").status_code == 401
            assert c.post("/api/v1/parameter/x", content=b"1", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            # HDF REST point selections are reads: no token
            root = c.get("/").json()["root"]
            dset = [link for link in c.get(f"/groups/{root}/links").json()["links"] if link["title"] == "data"][0]["id"]
            r = c.post(f"/datasets/{dset}/value", json={"points": [1, 3]})
            assert r.status_code == 200 and r.json()["value"] == [1, 3]
    finally:
        server.stop()


def test_loopback_is_the_default_binding() -> None:
    from dranspose.cli import build_parser
    from dranspose.config import Settings as S
    from dranspose.services.access import is_loopback

    parser = build_parser()
    for argv in (["controller"], ["reducer"]):
        assert is_loopback(parser.parse_args(argv).host), argv
    defaults = S(_env_file=None)  # type: ignore[call-arg]
    assert "localhost" in defaults.ingester_url and "localhost" in defaults.reducer_url
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
