"""Submitting a job: broker reachable, queue not full (checked atomically with the enqueue), and, only with
FAIL_FAST_WITHOUT_WORKER, a worker alive for callers who wait. By default a waiting caller's job sits in the queue
until a worker starts, which is what scaling workers from zero needs."""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError

from api.errors import broker_unavailable
from core.errors import APIError
from core.settings import Settings
from tasks.client import JobClient, QueueFull, QueueUnavailable
from tasks.jobs import JobRecord
from tasks.spec import SynthesisSpec

WORKER_CHECK_INTERVAL_S = 1.0


class Admission:
    def __init__(self, settings: Settings, jobs: JobClient) -> None:
        self._settings = settings
        self._jobs = jobs
        self._workers_seen_at = 0.0

    async def submit(self, spec: SynthesisSpec, *, caller_waits: bool, **options: Any) -> JobRecord:
        """`caller_waits`: the request stays open for the result (speech, `/runsync`), not just for a job id."""
        try:
            if caller_waits and self._settings.fail_fast_without_worker and not await self._worker_alive():
                raise APIError(
                    503,
                    "No worker is running to synthesize speech. Retry later.",
                    code="no_worker",
                    headers={"Retry-After": "10"},
                )
            return await self._jobs.submit(spec, max_queue_depth=self._settings.max_queue_depth, **options)
        except QueueFull as exc:
            raise APIError(
                429,
                f"The queue is full ({exc.depth} jobs waiting). Retry later.",
                code="queue_full",
                headers={"Retry-After": "5"},
            ) from exc
        except (RedisError, QueueUnavailable) as exc:
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
