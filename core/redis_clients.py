"""The service's Redis clients (job records, events, presence), with their timeouts chosen on purpose.

redis-py gives every socket read a default timeout (5 s in redis-py 8), which also bounds a blocking command: an
`XREAD BLOCK` that waits longer for a job's first event would raise as if Redis were down. So:

- every command, blocking or not, runs under `REDIS_SOCKET_TIMEOUT_S`: a Redis that stops answering is noticed
  within that time, and the request fails with a clear 503 instead of hanging;
- blocking reads never ask Redis to block longer than `blocking_slice_s`, well under that timeout; a long wait is a
  loop of such reads (see tasks/client.py), so waiting minutes for a busy queue never looks like a dead server.

Celery's own broker connection is kombu's and is configured apart (tasks/celery_app.py): a `socket_timeout` in the
Redis URL would break kombu, so these options are passed as keywords, never in the URL.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from core.settings import Settings

HEALTH_CHECK_INTERVAL_S = 30
"""A connection idle this long is pinged before reuse, so a server restart is found before a command fails."""


def client_options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


def blocking_slice_s(settings: Settings) -> float:
    """The longest a single blocking command may ask Redis to wait: half the socket timeout."""
    return settings.redis_socket_timeout_s / 2


def sync_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, **client_options(settings))


def async_client(settings: Settings, *, max_connections: int | None = None) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis_url, max_connections=max_connections, **client_options(settings))
