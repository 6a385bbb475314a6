"""Health check of the dranspose component running on this host (container probes, Docker's
HEALTHCHECK): ``python -m dranspose.services.health [--kind KIND] [--url URL]``.

- ``--url``: healthy when ``GET URL`` answers 2xx within the timeout (controller, reducer:
  their ``/healthz``).
- ``--kind``: healthy when a component of that kind whose advertised ``host`` is this host
  has a live presence in Redis (its state key, which expires without heartbeats) with a
  heartbeat younger than ``--max-age`` seconds (workers, ingesters: no HTTP server).
- neither: the controller/reducer ``/healthz`` on port 5000 if something listens there,
  else any kind in Redis.

Exit status 0 healthy, 1 not; one line on stdout says why. Reads ``REDIS_URL`` like every
component.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence

KINDS = ("ingester", "worker", "reducer")


def check_http(url: str, timeout: float) -> tuple[bool, str]:
    import httpx

    try:
        r = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{url}: {exc}"
    return r.is_success, f"{url}: HTTP {r.status_code}"


def check_presence(redis_url: str, kinds: Sequence[str], host: str, max_age: float, timeout: float) -> tuple[bool, str]:
    import redis

    from dranspose.store.keys import Keys

    keys = Keys()
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        for kind in kinds:
            names = sorted(n.decode(errors="replace") for n in client.smembers(keys.members(kind)))
            raws = client.mget([keys.state(kind, n) for n in names]) if names else []
            for name, raw in zip(names, raws):
                if raw is None:
                    continue
                st = json.loads(raw)
                if st.get("host") != host:
                    continue
                age = time.time() - float(st.get("time", 0))
                if age <= max_age:
                    return True, f"{kind} {name}: heartbeat {age:.1f} s ago"
                return False, f"{kind} {name}: last heartbeat {age:.1f} s ago"
    except (redis.RedisError, ValueError, TypeError) as exc:
        return False, f"Redis {redis_url}: {exc}"
    return False, f"no live {'/'.join(kinds)} of host {host} in Redis"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dranspose.services.health", description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=KINDS, help="check the Redis presence of this kind of component on this host")
    p.add_argument("--url", help="check this HTTP health endpoint, e.g. http://127.0.0.1:5000/healthz")
    p.add_argument("--max-age", type=float, default=10.0, help="oldest acceptable heartbeat in seconds (default 10)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds per request (default 3)")
    args = p.parse_args(argv)
    from dranspose.config import Settings

    if args.url:
        ok, why = check_http(args.url, args.timeout)
    elif args.kind:
        ok, why = check_presence(Settings().redis_url, [args.kind], socket.gethostname(), args.max_age, args.timeout)
    elif _listening(5000):
        ok, why = check_http("http://127.0.0.1:5000/healthz", args.timeout)
    else:
        ok, why = check_presence(Settings().redis_url, KINDS, socket.gethostname(), args.max_age, args.timeout)
    print(("healthy: " if ok else "unhealthy: ") + why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
