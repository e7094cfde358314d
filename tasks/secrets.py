"""The deployment's own secret for signing local-store links, when URL_SIGNING_KEY does not set one.

The first process that needs it generates 32 random bytes and stores them in Redis with SET NX; every API and
worker process then reads the same value, so links signed by a worker verify in any API process, and a restart
keeps them valid. The key has no TTL (Redis runs with `noeviction`); nobody without access to Redis can derive it.
"""

from __future__ import annotations

import secrets
from typing import TypeVar

import redis
import redis.asyncio as aioredis

from core.settings import Settings

URL_SIGNING_KEY = "secrets:url-signing-key"


def configured_url_signing_key(settings: Settings) -> bytes | None:
    return settings.url_signing_key.get_secret_value().encode() if settings.url_signing_key is not None else None


def url_signing_key(settings: Settings, client: redis.Redis) -> bytes:
    """The configured key, else the deployment's shared one (created on first use)."""
    configured = configured_url_signing_key(settings)
    if configured is not None:
        return configured
    stored: bytes = _get_or_create(client.pipeline(transaction=True)).execute()[1]
    return stored


async def url_signing_key_async(settings: Settings, client: aioredis.Redis) -> bytes:
    """`url_signing_key` for the API's asyncio client."""
    configured = configured_url_signing_key(settings)
    if configured is not None:
        return configured
    stored: bytes = (await _get_or_create(client.pipeline(transaction=True)).execute())[1]
    return stored


_Pipeline = TypeVar("_Pipeline", redis.client.Pipeline, aioredis.client.Pipeline)


def _get_or_create(pipe: _Pipeline) -> _Pipeline:
    """One transaction: store a new random key unless one exists, then read whichever is there."""
    pipe.set(URL_SIGNING_KEY, secrets.token_hex(32), nx=True)
    pipe.get(URL_SIGNING_KEY)
    return pipe
