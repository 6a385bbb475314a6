"""Redis connections with one clear error when Redis is not there."""

from __future__ import annotations

import redis

from dranspose.errors import RedisUnavailable


def connect(url: str, *, check: bool = True) -> redis.Redis:
    """A client for ``url`` (bytes responses). With ``check``, ping once and raise
    :class:`RedisUnavailable` with a hint instead of a traceback deep in redis-py."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, health_check_interval=30)
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(
                f"cannot reach Redis at {url} ({exc}). Start redis-server, set REDIS_URL, "
                f"or use 'dranspose combined', which starts a private one."
            ) from exc
    return client
