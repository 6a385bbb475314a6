"""Hosts made of Linux network namespaces, for running each component on its own host.

One namespace per host plus one holding a bridge; each host has a veth pair whose other end
is a port of that bridge, an address in a private /24, and a hosts file
(``/etc/netns/<ns>/hosts``, which ``ip netns exec`` mounts over ``/etc/hosts``) naming every
host, so host names resolve as service names do in Kubernetes. Processes run in their host
with ``ip netns exec <ns> unshare --uts`` and that host's name as their host name. The test's
own client runs in a host too (a thread that entered its namespace with setns(2)).

Every name carries the test run's pid; :meth:`Hosts.cleanup` removes everything, and
:func:`sweep_stale` removes what runs of dead processes left behind.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

PREFIX = "drt"  # dranspose test
NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
CLONE_NEWNET = 0x40000000


def unavailable() -> str | None:
    """Why network-namespace hosts cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"'{tool}' is missing (install iproute2/util-linux: scripts/ensure-iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        return f"cannot create network namespaces here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def sweep_stale() -> None:
    """Delete namespaces and hosts files left by test runs whose process is gone."""
    names = [p.name for p in NETNS_DIR.glob(f"{PREFIX}*")] + [p.name for p in ETC_NETNS.glob(f"{PREFIX}*")]
    for name in set(names):
        m = re.match(rf"{PREFIX}(\d+)-", name)
        if m is None or Path(f"/proc/{m.group(1)}").exists():
            continue
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)


class Hosts:
    """Named hosts on one private bridge. ``hosts[name]`` is the host's IP address."""

    def __init__(self, names: list[str], subnet: str | None = None) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        third = os.getpid() % 250 + 1
        self.subnet = subnet or f"10.213.{third}"
        self.names = list(names)
        self.addresses = {name: f"{self.subnet}.{i + 10}" for i, name in enumerate(self.names)}
        self.bridge_ns = f"{self.tag}-bridge"
        self._made: list[str] = []
        self._client: concurrent.futures.ThreadPoolExecutor | None = None

    def ns(self, host: str) -> str:
        """The namespace of ``host``."""
        return f"{self.tag}-{host}"

    def hostname(self, host: str) -> str:
        """The name ``host`` is known by (in every hosts file, and its own host name)."""
        return f"{self.tag}-{host}"

    def create(self) -> "Hosts":
        try:
            self._add_ns(self.bridge_ns)
            _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
            hosts_file = "127.0.0.1 localhost\n" + "".join(
                f"{addr} {self.hostname(h)}\n" for h, addr in self.addresses.items()
            )
            for i, host in enumerate(self.names):
                ns = self.ns(host)
                self._add_ns(ns)
                port = f"p{i}"
                _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.bridge_ns)
                _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", self.bridge_ns, "link", "set", port, "master", "br0")
                _ip("-n", self.bridge_ns, "link", "set", port, "up")
                etc = ETC_NETNS / ns
                etc.mkdir(parents=True, exist_ok=True)
                (etc / "hosts").write_text(hosts_file)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)

    def wrap(self, host: str, argv: list[str], env: dict[str, str]) -> list[str]:
        """``argv`` run in ``host`` (its network, its host name) with exactly ``env``."""
        return [
            "ip", "netns", "exec", self.ns(host), "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname(host),
            "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv,
        ]

    def in_host(self, host: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` in a thread that lives in ``host``'s network namespace (the test's
        client; sockets it opens stay there). One client host per :class:`Hosts`."""
        if self._client is None:
            path = NETNS_DIR / self.ns(host)

            def enter() -> None:
                fd = os.open(path, os.O_RDONLY)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)

            self._client = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netns-client", initializer=enter)
        return self._client.submit(fn).result()

    def cleanup(self) -> None:
        if self._client is not None:
            self._client.shutdown(wait=True)
            self._client = None
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
        self._made = []
