"""Synchronous wrappers over the async JobClient for tests that drive real workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.redis_clients import async_client
from core.settings import Settings
from tasks.celery_app import create_celery_app
from tasks.client import JobClient, JobEvent
from tasks.jobs import JobRecord, JobStatus
from tasks.spec import SynthesisSpec
from tests.support.processes import wait_for

T = TypeVar("T")


class SyncJobs:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._celery = create_celery_app(settings)

    def _run(self, call: Callable[[JobClient], Awaitable[T]]) -> T:
        async def go() -> T:
            client = async_client(self.settings)
            try:
                return await call(JobClient(self.settings, client, self._celery))
            finally:
                await client.aclose()

        return asyncio.run(go())

    def submit(self, spec: SynthesisSpec, **options: Any) -> JobRecord:
        return self._run(lambda c: c.submit(spec, **options))

    def get(self, job_id: str) -> JobRecord | None:
        return self._run(lambda c: c.get(job_id))

    def cancel(self, job_id: str) -> Any:
        return self._run(lambda c: c.cancel(job_id))

    def retry(self, job_id: str) -> Any:
        return self._run(lambda c: c.retry(job_id))

    def purge(self) -> int:
        return self._run(lambda c: c.purge_queue())

    def counts(self) -> dict[str, int]:
        return self._run(lambda c: c.counts())

    def events(self, job_id: str, timeout_s: float = 60) -> list[JobEvent]:
        async def collect(c: JobClient) -> list[JobEvent]:
            return [event async for event in c.events(job_id, timeout_s=timeout_s)]

        return self._run(collect)

    def wait_until(self, job_id: str, condition: Callable[[JobRecord], bool], timeout_s: float = 60) -> JobRecord:
        seen: list[JobRecord] = []

        def reached() -> bool:
            record = self.get(job_id)
            if record is None or not condition(record):
                return False
            seen.append(record)
            return True

        wait_for(reached, timeout_s, f"job {job_id} to reach the expected state", interval_s=0.01)
        return seen[-1]

    def wait_status(self, job_id: str, statuses: set[JobStatus], timeout_s: float = 60) -> JobRecord:
        return self.wait_until(job_id, lambda record: record.status in statuses, timeout_s)

    def wait_progress(self, job_id: str, at_least: int, timeout_s: float = 60) -> JobRecord:
        return self.wait_until(job_id, lambda record: record.chunks_done >= at_least, timeout_s)


def speech_text(sentences: int) -> str:
    """Long enough text: each sentence becomes part of a chunk of at most 300 characters."""
    line = "The quick brown fox jumps over the lazy dog while the band plays a slow and quiet song."
    return " ".join(f"{line} This is sentence number {n}." for n in range(sentences))
