"""The controller's status page in headless Chromium during a running demo scan: progress
grows between two loads, the rate chart draws one line per worker, every component is listed
with its host and heartbeat, links point to the viewer; no console error.
Screenshot: docs/status.png."""

from __future__ import annotations

import socket
import time

from tests.browser.cdp import Browser
from tests.browser.conftest import DemoScan
from tests.paths import ROOT

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


def test_status_page_screenshot(demo_scan: DemoScan, browser: Browser) -> None:
    browser.goto(f"{demo_scan.controller_url}/")
    browser.wait_for("document.querySelectorAll('#rate-chart path[data-worker]').length === 2", timeout=15)
    time.sleep(3)  # a few more points in the chart
    path = browser.screenshot(ROOT / "docs" / "status.png")
    assert path.stat().st_size > 10_000
    assert browser.console_errors == []
