"""`dranspose combined --demo` (what `make demo` runs), as a process: it prints the live
viewer's URL, and the demo's curves and preview image move there while the scan runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

import pytest

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)


def test_demo_prints_the_viewer_url_and_its_data_moves() -> None:
    cmd = [sys.executable, "-m", "dranspose.cli", "combined", "--demo", "--demo-frames", "4000", "--demo-rate", "200",
           "--demo-shape", "64x64", "--controller-port", "0", "--reducer-port", "0", "--nworkers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            m = re.search(r"live viewer (http://\S+/viewer)", line)
            if m:
                url = m.group(1)
        assert url is not None, "".join(lines)
        with httpx.Client(timeout=10) as c:
            assert c.get(url).status_code == 200
            api = url + "/api/poll"
            lengths, etags = [], set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (len(set(lengths)) < 3 or len(etags) < 2):
                body = c.get(api, params=[("path", "/sum"), ("path", "/preview")]).json()
                sums, preview = body["datasets"]["/sum"], body["datasets"]["/preview"]
                if sums.get("kind") == "line":
                    lengths.append(sums["shape"][0])
                if preview.get("kind") == "image":
                    assert preview["shape"] == [64, 64]
                    etags.add(preview["etag"])
                time.sleep(0.3)
            assert len(set(lengths)) >= 3 and lengths == sorted(lengths), lengths  # the curve grows
            assert len(etags) >= 2  # the preview image changes
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
