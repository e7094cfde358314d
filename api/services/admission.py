"""Whether a new job may enter the queue: broker reachable, queue not full, and (for waiting callers) a worker."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from api.errors import APIError
from core.settings import Settings
from tasks.client import JobClient

WORKER_CHECK_INTERVAL_S = 1.0


class Admission:
    def __init__(self, settings: Settings, jobs: JobClient) -> None:
        self._settings = settings
        self._jobs = jobs
        self._workers_seen_at = 0.0

    async def admit(self, *, needs_worker: bool) -> None:
        try:
            depth = await self._jobs.queue_depth()
            if depth >= self._settings.max_queue_depth:
                raise APIError(
                    429,
                    f"The queue is full ({depth} jobs waiting). Retry later.",
                    code="queue_full",
                    headers={"Retry-After": "5"},
                )
            if needs_worker and not await self._worker_alive():
                raise APIError(
                    503,
                    "No worker is running to synthesize speech. Retry later.",
                    code="no_worker",
                    headers={"Retry-After": "10"},
                )
        except RedisError as exc:
            raise broker_unavailable() from exc

    async def _worker_alive(self) -> bool:
        # Presence keys live 30 s; one look a second is plenty and keeps SCAN off the hot path.
        now = time.monotonic()
        if now - self._workers_seen_at < WORKER_CHECK_INTERVAL_S:
            return True
        counts = await self._jobs.worker_counts()
        if counts["idle"] + counts["running"] == 0:
            return False
        self._workers_seen_at = now
        return True


def broker_unavailable() -> APIError:
    return APIError(
        503,
        "The job queue is unavailable. Retry later.",
        code="queue_unavailable",
        headers={"Retry-After": "5"},
    )
