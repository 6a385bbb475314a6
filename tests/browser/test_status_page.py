"""The controller's status page in headless Chromium during a running demo scan: progress
grows between two loads, the rate chart draws one line per worker, every component is listed
with its host and heartbeat, links point to the viewer; no console error.
Screenshot: docs/status.png."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.browser.cdp import Browser
from tests.browser.conftest import DemoScan

import pytest

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)

DONE = "Number((document.querySelector('#scan .kv span:nth-child(6)')?.textContent || '0').split(' / ')[0])"


def load(browser: Browser, scan: DemoScan) -> int:
    browser.goto(f"{scan.controller_url}/")
    browser.wait_for("window.statusState && window.statusState.polls > 0")
    return int(browser.evaluate(DONE))


def test_status_page_progress_chart_components_links(demo_scan: DemoScan, browser: Browser) -> None:
    first = load(browser, demo_scan)
    time.sleep(1.5)
    second = load(browser, demo_scan)
    assert second > first
    # the rate chart: one line per worker, once two samples of history exist
    browser.wait_for("document.querySelectorAll('#rate-chart path[data-worker]').length === 2", timeout=15)
    assert browser.evaluate("[...document.querySelectorAll('#legend span')].map(e => e.textContent)") == ["w0", "w1"]
    rows = browser.evaluate("[...document.querySelectorAll('#components tr')].slice(1).map(r => [...r.children].map(c => c.textContent))")
    assert {(r[0], r[1]) for r in rows} == {("ingester", "demo-ingester"), ("worker", "w0"), ("worker", "w1"), ("reducer", "reducer")}
    assert all(r[2] == socket.gethostname() for r in rows)
    assert all(r[4].endswith("s ago") for r in rows)
    links = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#links a')].map(a => [a.textContent, a.href]))")
    assert links["live viewer"] == f"{demo_scan.reducer_url}/viewer"
    assert links["API docs"].endswith("/docs")
    eta = browser.evaluate("document.querySelector('#scan .kv span:nth-child(10)').textContent")
    assert eta.endswith(" s") or "min" in eta
    browser.pump(0.5)
    assert browser.console_errors == []


def test_status_page_screenshot(demo_scan: DemoScan, browser: Browser, shots: Path) -> None:
    browser.goto(f"{demo_scan.controller_url}/")
    browser.wait_for("document.querySelectorAll('#rate-chart path[data-worker]').length === 2", timeout=15)
    time.sleep(3)  # a few more points in the chart
    path = browser.screenshot(shots / "status.png")
    assert path.stat().st_size > 10_000
    assert browser.console_errors == []


def test_status_page_shows_hostile_states_as_text(demo_scan: DemoScan, browser: Browser) -> None:
    """Component states come from the network: names are text, never HTML; a non-http link is
    not made clickable (issue 11: the old page's esc() did not escape quotes in href)."""
    from dranspose.store.connection import connect
    from dranspose.store.keys import Keys

    keys, client = Keys(), connect(demo_scan.cluster.redis_url)
    evil_worker = '"><img src=x onerror="window.pwned=1">'
    evil_reducer = {"name": "0-evil", "kind": "reducer", "host": "<b>h</b>", "time": time.time(),
                    "http": "javascript:window.pwned=2//", "errors": {"<script>": 1}}
    client.set(keys.state("worker", evil_worker), json.dumps({"name": evil_worker, "kind": "worker", "time": time.time(),
                                                                "tags": ["<i>t</i>"]}), px=60_000)
    client.sadd(keys.members("worker"), evil_worker)
    client.set(keys.state("reducer", "0-evil"), json.dumps(evil_reducer), px=60_000)
    client.sadd(keys.members("reducer"), "0-evil")
    try:
        browser.goto(f"{demo_scan.controller_url}/")
        browser.wait_for(f"[...document.querySelectorAll('#components td')].some(td => td.textContent === {json.dumps(evil_worker)})")
        assert browser.evaluate("document.querySelectorAll('#components img, #components b, #components i, #errors script').length") == 0
        assert browser.evaluate("[...document.querySelectorAll('a')].filter(a => a.href.startsWith('javascript')).length") == 0
        assert browser.evaluate("[...document.querySelectorAll('#links span')].map(s => s.textContent)") == ["live viewer", "results (HDF REST)"]
        browser.pump(0.5)
        assert browser.evaluate("window.pwned === undefined")
    finally:
        client.srem(keys.members("worker"), evil_worker)
        client.delete(keys.state("worker", evil_worker))
        client.srem(keys.members("reducer"), "0-evil")
        client.delete(keys.state("reducer", "0-evil"))
