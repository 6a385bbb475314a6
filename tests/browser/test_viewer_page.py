"""The live viewer in headless Chromium during a running demo scan: curves grow between two
loads, the preview renders as an image, no console error. Screenshot: docs/viewer.png."""

from __future__ import annotations

import time
from pathlib import Path

from tests.browser.cdp import Browser
from tests.browser.conftest import DemoScan

import pytest

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)

CURVE_LENGTH = "(document.getElementById('plot').data || [{}])[0].y?.length || 0"


def load_curves(browser: Browser, scan: DemoScan) -> int:
    browser.goto(f"{scan.reducer_url}/viewer?select=/sum&select=/max")
    browser.wait_for("window.viewerState && window.viewerState.draws > 0 && document.getElementById('plot').data?.length === 2")
    assert browser.evaluate("document.getElementById('plot').data.map(t => t.name)") == ["/sum", "/max"]
    return int(browser.evaluate(CURVE_LENGTH))


def test_viewer_curves_grow_between_loads(demo_scan: DemoScan, browser: Browser) -> None:
    first = load_curves(browser, demo_scan)
    time.sleep(1.5)
    second = load_curves(browser, demo_scan)
    assert second > first > 0
    # and while the page stays open, polling alone brings new points
    browser.wait_for(f"{CURVE_LENGTH} > {second}", timeout=10)
    tree = browser.evaluate("[...document.querySelectorAll('#tree .node .name')].map(e => e.textContent)")
    assert {"sum", "max", "preview"} <= set(tree)
    browser.pump(0.5)
    assert browser.console_errors == []


def test_viewer_draws_2d_dataset_as_image(demo_scan: DemoScan, browser: Browser) -> None:
    browser.goto(f"{demo_scan.reducer_url}/viewer?select=/preview")
    browser.wait_for("document.getElementById('plot').data?.[0]?.type === 'heatmap'")
    shape = browser.evaluate("[document.getElementById('plot').data[0].z.length, document.getElementById('plot').data[0].z[0].length]")
    assert shape == [96, 128]
    # plotly rendered the heatmap into the page (an image layer), with a colour bar
    browser.wait_for("document.querySelector('#plot .heatmaplayer image, #plot .hm image') !== null")
    assert browser.evaluate("document.querySelector('#plot .colorbar') !== null")
    browser.evaluate("document.getElementById('log').click()")
    browser.wait_for("document.getElementById('plot').layout && (document.getElementById('plot').data[0].colorbar.title.text === 'log10')")
    # log10 of the uint16 counts: every value the log10 of a whole count, some fractional, the
    # maximum far below the counts' (the demo's spot is 97-900 counts high at its brightest
    # pixel as it fades and brightens: log10 1.98-2.96)
    top, fractional, whole_counts = browser.evaluate("""(() => {
        let top = -1, fractional = false, whole = true;
        for (const row of document.getElementById('plot').data[0].z) for (const v of row) {
            if (Number.isNaN(v)) continue;
            top = Math.max(top, v);
            if (v !== Math.trunc(v)) fractional = true;
            const count = Math.pow(10, v);
            if (Math.abs(count - Math.round(count)) > 0.02) whole = false;
        }
        return [top, fractional, whole];
    })()""")
    assert 1.9 < top < 5 and fractional and whole_counts, (top, fractional, whole_counts)
    browser.evaluate("document.getElementById('log').click()")
    browser.pump(0.5)
    assert browser.console_errors == []


def test_viewer_draws_nxdata_against_its_axis(demo_scan: DemoScan, browser: Browser) -> None:
    browser.goto(f"{demo_scan.reducer_url}/viewer?select=/scan")
    browser.wait_for("document.getElementById('plot').data?.[0]?.x?.length > 2")
    trace = browser.evaluate("(() => { const t = document.getElementById('plot').data[0];"
                             " return {name: t.name, x: Array.from(t.x.slice(0, 3)), n: t.x.length, m: t.y.length}; })()")
    assert trace["name"] == "/scan/sum" and trace["n"] == trace["m"]
    assert trace["x"] == sorted(trace["x"]) and trace["x"][0] >= 0
    assert browser.evaluate("document.getElementById('plot').layout.xaxis.title.text") == "/scan/frame"
    assert browser.evaluate("[...document.querySelectorAll('#tree .node')].some(n => n.textContent.includes('NXdata'))")
    browser.pump(0.3)
    assert browser.console_errors == []


def test_viewer_screenshot(demo_scan: DemoScan, browser: Browser, shots: Path) -> None:
    """The README's screenshots: a curve (docs/viewer.png) and the preview image (docs/viewer-image.png)."""
    browser.goto(f"{demo_scan.reducer_url}/viewer?select=/peak_x&select=/peak_y")
    browser.wait_for(f"{CURVE_LENGTH} > 200", timeout=20)
    time.sleep(0.5)
    path = browser.screenshot(shots / "viewer.png")
    browser.goto(f"{demo_scan.reducer_url}/viewer?select=/preview")
    browser.wait_for("document.getElementById('plot').data?.[0]?.type === 'heatmap'")
    time.sleep(0.5)
    path2 = browser.screenshot(shots / "viewer-image.png")
    assert path.stat().st_size > 10_000 and path2.stat().st_size > 10_000
    assert browser.console_errors == []
