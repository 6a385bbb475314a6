"""Access control of every HTTP server (controller, reducer, replay, HTTP ingester): one ASGI
middleware added by each app factory through :func:`protect`.

Per request, in this order:

1. **Host check** (DNS rebinding): a request that arrived over loopback must name a loopback
   host, an IP literal or this machine in ``Host``, unless ``DRANSPOSE_ALLOWED_HOSTS`` lists
   the allowed names (``*`` allows any); then every request is checked against that list.
   Otherwise 400.
2. **Body limit**: a body larger than ``max_body_bytes`` is refused with 413 before it is
   read into memory (``Content-Length`` checked first, then the bytes as they arrive).
3. **Token**: with ``DRANSPOSE_API_TOKEN`` (or ``DRANSPOSE_API_TOKEN_FILE``) set, every
   mutating call (POST, PUT, PATCH, DELETE, except read-only POSTs such as HDF REST point
   selections) needs ``Authorization: Bearer <token>``; 401 otherwise.
4. **Cross-site forms**: a mutating call with a cross-origin ``Origin`` and a body type a
   browser sends without a CORS preflight (none, ``text/plain``, forms) is refused with 403.
5. **JSON bodies**: routes listed as JSON need ``Content-Type: application/json`` (415).

Nothing here is required for loopback-only single-machine use: without a token the checks
that remain cost a few dictionary lookups per request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dranspose.errors import ConfigError

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIMPLE_TYPES = ("", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
DEFAULT_MAX_BODY = 64 * 1024 * 1024
# Read-only POSTs of the HDF REST API (point and hyperslab selections).
HDFREST_READ_POSTS = (r"^/datasets/[^/]+/value$",)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _read_token(token: str | None, token_file: str | None) -> str | None:
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the API token file {token_file}: {exc}") from exc
        if not token:
            raise ConfigError(f"the API token file {token_file} is empty")
    return token or None


def _split(value: str | None) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    return frozenset(h.strip().lower() for h in value.split(",") if h.strip())


def _own_names() -> frozenset[str]:
    names = {"localhost"}
    try:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    except OSError:
        pass
    return frozenset(names)


@dataclass(frozen=True)
class AccessPolicy:
    """What :class:`AccessMiddleware` enforces (see module doc)."""

    token: str | None = None
    allowed_hosts: frozenset[str] | None = None  # None: the loopback rule
    max_body_bytes: int = DEFAULT_MAX_BODY
    own_names: frozenset[str] = field(default_factory=_own_names)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, max_body_bytes: int | None = None) -> AccessPolicy:
        """From ``DRANSPOSE_API_TOKEN`` / ``DRANSPOSE_API_TOKEN_FILE``, ``DRANSPOSE_ALLOWED_HOSTS``
        and ``DRANSPOSE_MAX_BODY_BYTES``."""
        env = os.environ if environ is None else environ
        limit = max_body_bytes
        if limit is None:
            raw = env.get("DRANSPOSE_MAX_BODY_BYTES")
            try:
                limit = int(raw) if raw else DEFAULT_MAX_BODY
            except ValueError:
                raise ConfigError(f"DRANSPOSE_MAX_BODY_BYTES must be an integer, got {raw!r}") from None
        return cls(
            token=_read_token(env.get("DRANSPOSE_API_TOKEN"), env.get("DRANSPOSE_API_TOKEN_FILE")),
            allowed_hosts=_split(env.get("DRANSPOSE_ALLOWED_HOSTS")),
            max_body_bytes=limit,
        )

    # ---- the checks (pure)
    def host_allowed(self, host_header: str, via_loopback: bool) -> bool:
        host = _host_name(host_header)
        if self.allowed_hosts is not None:
            return "*" in self.allowed_hosts or host in self.allowed_hosts
        if not via_loopback:
            return True
        return host in self.own_names or host.endswith(".localhost") or _is_ip(host)

    def authorized(self, authorization: str) -> bool:
        if self.token is None:
            return True
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:5000
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def is_loopback(host: str | None) -> bool:
    """True for loopback bind addresses and names (``localhost``, ``127.x``, ``::1``)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(component: str, host: str, policy: AccessPolicy | None = None) -> None:
    """A warning at start when ``component`` binds a non-loopback address with no API token."""
    policy = policy or AccessPolicy.from_env()
    if not is_loopback(host) and policy.token is None:
        log.warning(
            "%s serves HTTP on %s without an API token: anyone who can reach it may change scans and "
            "parameters; set DRANSPOSE_API_TOKEN (or DRANSPOSE_API_TOKEN_FILE)",
            component, host,
        )


class AccessMiddleware:
    """Pure ASGI middleware enforcing an :class:`AccessPolicy` (see module doc)."""

    def __init__(
        self,
        app: Any,
        policy: AccessPolicy,
        json_routes: Iterable[str] = (),
        read_only_posts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.policy = policy
        self.json_routes = [re.compile(p) for p in json_routes]
        self.read_only = [re.compile(p) for p in read_only_posts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        server = scope.get("server") or ("", 0)
        if not self.policy.host_allowed(headers.get("host", ""), is_loopback(str(server[0]))):
            await _reply(send, 400, f"Host {headers.get('host', '')!r} not allowed (DRANSPOSE_ALLOWED_HOSTS)")
            return
        method, path = scope["method"], scope.get("path", "")
        limit = self.policy.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "malformed Content-Length")
                return
            if int(length) > limit:
                await _reply(send, 413, f"request body of {length} bytes exceeds the limit of {limit} bytes (DRANSPOSE_MAX_BODY_BYTES)")
                return
        if method in MUTATING and not any(p.match(path) for p in self.read_only):
            if not self.policy.authorized(headers.get("authorization", "")):
                await _reply(send, 401, "this call needs 'Authorization: Bearer <token>' (DRANSPOSE_API_TOKEN)",
                             [(b"www-authenticate", b"Bearer")])
                return
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            origin = headers.get("origin")
            if origin and ctype in SIMPLE_TYPES and _origin_host(origin) != headers.get("host", "").lower():
                await _reply(send, 403, f"cross-site {ctype or 'untyped'} request from {origin} refused")
                return
            if any(p.match(path) for p in self.json_routes) and ctype != "application/json":
                await _reply(send, 415, f"the body must be JSON with Content-Type: application/json, got {ctype or 'none'!r}")
                return
        if method in ("GET", "HEAD", "OPTIONS", "DELETE") and length is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, _limited(receive, limit), send)


class _TooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge(f"request body exceeds the limit of {limit} bytes")
        return message

    return wrapped


class _BodyLimitGuard:
    """Turns a body that outgrew the limit while streaming (no Content-Length) into a 413."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await _reply(send, 413, str(exc))


def _origin_host(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/").lower()


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def protect(
    app: Any,
    policy: AccessPolicy | None = None,
    *,
    json_routes: Iterable[str] = (),
    read_only_posts: Iterable[str] = HDFREST_READ_POSTS,
) -> AccessPolicy:
    """Add the access checks to a FastAPI/Starlette ``app`` (outermost middleware); returns the
    policy in force (from the environment unless given)."""
    policy = policy or AccessPolicy.from_env()
    app.add_middleware(_BodyLimitGuard)
    app.add_middleware(AccessMiddleware, policy=policy, json_routes=tuple(json_routes), read_only_posts=tuple(read_only_posts))
    return policy


# ---- secrets in what the REST APIs show
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|api_?key|credential", re.IGNORECASE)
REDACTED = "***"


def redact_url(url: str) -> str:
    """``redis://user:pw@host`` -> ``redis://user:***@host`` (other strings unchanged)."""
    return re.sub(r"^([a-zA-Z][\w+.-]*://[^:/@]*:)[^@/]*@", rf"\g<1>{REDACTED}@", url)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secrets replaced: values of keys that name a secret, and
    passwords inside URLs."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and SECRET_KEYS.search(k) and v else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and "@" in value and "://" in value:
        return redact_url(value)
    return value
