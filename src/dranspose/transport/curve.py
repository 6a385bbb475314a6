"""Optional ZeroMQ CURVE on the pipeline's data sockets: only holders of the pipeline key
can join.

One key pair per pipeline, in a ZeroMQ certificate file (``public-key`` and ``secret-key``
lines, as ``zmq.auth.create_certificates`` writes them) named by ``DRANSPOSE_CURVE_KEY_FILE``.
Servers (ingester ROUTER, reducer PULL) encrypt with it and admit only clients presenting the
same public key (a ZAP handler per ZeroMQ context); clients (worker DEALER and PUSH) connect
with it. Without the setting nothing changes. Make a key pair with::

    python -c "import zmq.auth; zmq.auth.create_certificates('/etc/dranspose', 'pipeline')"

and give every component ``DRANSPOSE_CURVE_KEY_FILE=/etc/dranspose/pipeline.key_secret``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from dranspose.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurveKeys:
    public: bytes
    secret: bytes

    @classmethod
    def load(cls, path: str | None) -> CurveKeys | None:
        """The key pair of a secret certificate file; None when ``path`` is empty."""
        if not path:
            return None
        if not zmq.has("curve"):
            raise ConfigError("DRANSPOSE_CURVE_KEY_FILE is set but this libzmq has no CURVE support")
        try:
            public, secret = zmq.auth.load_certificate(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the CURVE key file {path}: {exc}") from exc
        if not secret:
            raise ConfigError(f"the CURVE key file {path} holds no secret key")
        return cls(public, secret)


class _Admit:
    """ZAP credentials callback: admit exactly the registered public keys."""

    def __init__(self) -> None:
        self.keys: set[bytes] = set()

    def callback(self, domain: str, key: bytes) -> bool:
        ok = zmq.utils.z85.encode(key) in self.keys if len(key) == 32 else key in self.keys
        if not ok:
            log.warning("CURVE: refused a peer with an unknown key")
        return ok


_lock = threading.Lock()
_authenticators: dict[int, tuple[ThreadAuthenticator, _Admit]] = {}


def _admit_on(ctx: zmq.Context[Any], public: bytes) -> None:
    with _lock:
        entry = _authenticators.get(id(ctx))
        if entry is None:
            auth = ThreadAuthenticator(ctx, log=logging.getLogger("dranspose.transport.zap"))
            auth.start()
            admit = _Admit()
            auth.configure_curve_callback("*", credentials_provider=admit)
            entry = _authenticators[id(ctx)] = (auth, admit)
        entry[1].keys.add(public)


def secure_server(sock: zmq.Socket[Any], keys: CurveKeys | None) -> None:
    """Make ``sock`` (before ``bind``) a CURVE server admitting only holders of ``keys``."""
    if keys is None:
        return
    _admit_on(sock.context, keys.public)
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def secure_client(sock: zmq.Socket[Any], keys: CurveKeys | None) -> None:
    """Make ``sock`` (before ``connect``) a CURVE client of a server holding ``keys``."""
    if keys is None:
        return
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.public
