"""Start a private HSDS (``pip install hsds``) on unix sockets, for tests and benchmarks.

No TCP port is opened (HSDS's TCP mode listens on all interfaces with fixed ports). HSDS runs
in its own process group; :meth:`LocalHSDS.stop` terminates the group and waits for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)


class HSDSUnavailable(RuntimeError):
    """HSDS could not be started (not installed, or not ready in time)."""


class LocalHSDS:
    """A running HSDS: ``endpoint`` (``http+unix://...``), ``username``, ``password``,
    ``bucket``; :meth:`kwargs` gives the keyword arguments for ``h5pyd.File``."""

    def __init__(self, root: str | os.PathLike[str] | None = None, username: str = "dranspose",
                 password: str = "dranspose", bucket: str = "results",
                 ready_timeout: float = 30.0) -> None:
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hsds-"))
        self.username, self.password, self.bucket = username, password, bucket
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        sock = self.root / "sock" / "sn_1.sock"
        self.endpoint = "http+unix://" + urllib.parse.quote(str(sock), safe="")

    def kwargs(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "username": self.username,
                "password": self.password, "bucket": self.bucket}

    def start(self) -> "LocalHSDS":
        exe = shutil.which("hsds")
        if exe is None:
            raise HSDSUnavailable("the 'hsds' command is not installed (pip install hsds)")
        for attempt in range(2):
            self._launch(exe)
            if self._wait_ready():
                self._make_home()
                return self
            logger.warning("HSDS not ready (attempt %d); log: %s", attempt + 1,
                           self.root / "hs.log")
            self.stop(cleanup=False)
        raise HSDSUnavailable(f"HSDS did not become ready; see {self.root / 'hs.log'}")

    def _launch(self, exe: str) -> None:
        for sub in ("data", "sock"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "data" / self.bucket).mkdir(exist_ok=True)
        cmd = [exe, "--root_dir", str(self.root / "data"), "--bucket_name", self.bucket,
               "--socket_dir", str(self.root / "sock"), "--hs_username", self.username,
               "--hs_password", self.password, "--count", "1",
               "--logfile", str(self.root / "hs.log")]
        with open(self.root / "hsds.out", "ab") as out:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait_ready(self) -> bool:
        import requests_unixsocket

        deadline = time.monotonic() + self._ready_timeout
        session = requests_unixsocket.Session()
        auth = (self.username, self.password)
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                about = session.get(self.endpoint + "/about", timeout=2, auth=auth)
                if about.status_code == 200 and about.json().get("state") == "READY":
                    probe = session.get(self.endpoint + "/", auth=auth, timeout=5,
                                        params={"domain": "/home", "bucket": self.bucket})
                    if probe.status_code < 500:
                        return True
            except Exception:  # not listening yet
                pass
            time.sleep(0.2)
        return False

    def _make_home(self) -> None:
        import h5pyd

        for folder in ("/home/", f"/home/{self.username}/"):
            try:
                h5pyd.Folder(folder, mode="x", **self.kwargs())
            except OSError as exc:  # already exists (a reused root)
                logger.debug("folder %s: %s", folder, exc)

    def domain(self, name: str) -> str:
        """A domain path in the user's home folder."""
        return f"/home/{self.username}/{name}"

    def stop(self, cleanup: bool = True) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            # the service nodes are in the same group: wait until none is left
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        if cleanup and self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalHSDS":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
