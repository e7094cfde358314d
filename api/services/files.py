"""The local store as the API sees it: files behind signed links, and the retention that deletes old ones.

Workers write the outputs; the API, which serves them, is what always runs beside that directory, so it is the API
that deletes outputs past `OUTPUT_RETENTION_S`: a background task of its lifespan, with nothing to schedule.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import redis.asyncio as aioredis

from core.settings import Settings
from core.storage import StorageError, local_path, remove_expired_outputs, verify_local_url
from tasks.secrets import url_signing_key_async

log = logging.getLogger(__name__)

SWEEP_INTERVAL_MAX_S = 60.0


class LocalFiles:
    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self._settings = settings
        self._redis = client
        self._root = settings.local_store_dir
        self._signing_key: bytes | None = None

    async def find(self, key: str, expires: str | None, signature: str | None) -> Path | None:
        """The file a link points at, if the link is genuine and live and the file still exists."""
        if expires is None or signature is None:
            return None
        if self._signing_key is None:
            # Fetched on first use, not at start-up: the API starts (and answers 503s) without Redis.
            self._signing_key = await url_signing_key_async(self._settings, self._redis)
        if not verify_local_url(self._signing_key, key, expires, signature):
            return None
        try:
            path = local_path(self._root, key)
        except StorageError:
            return None
        return path if await anyio.Path(path).is_file() else None

    async def keep_within_retention(self) -> None:
        """Delete outputs older than the retention, now and then, until cancelled (at shutdown)."""
        retention = self._settings.resolved_output_retention_s
        interval = min(SWEEP_INTERVAL_MAX_S, max(1.0, retention / 10))
        while True:
            cutoff = time.time() - retention
            try:
                removed = await anyio.to_thread.run_sync(remove_expired_outputs, self._root, cutoff)
            except OSError as exc:
                log.error("could not delete expired outputs under %s: %s", self._root, exc)
            else:
                if removed:
                    log.info("deleted %d outputs older than %d s", removed, retention)
            await anyio.sleep(interval)
