"""The worker's side of the job record: start, progress, audio, finish. Synchronous (workers are)."""

from __future__ import annotations

import time
from typing import Any

import redis

from core.settings import Settings
from tasks import lifecycle
from tasks.jobs import JobRecord, JobStatus, TransitionResult, as_text, events_key, record_key
from tasks.metrics import (
    AUDIO_SECONDS_KEY,
    ENGINE_SECONDS_KEY,
    LATENCY_BUCKETS_S,
    LATENCY_SUM_KEY,
    latency_bucket_key,
)

BACKLOG_POLL_S = 0.02


class CallerNotReading(Exception):
    """The caller waiting for a job's audio read none of it for AUDIO_STREAM_STALL_S while the bound was full."""


class JobUpdates:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._redis = client
        self._stream_maxlen = settings.audio_stream_maxlen
        self._audio_max_bytes = settings.audio_stream_max_bytes
        self._audio_stall_s = settings.audio_stream_stall_s
        self._scripts = lifecycle.Scripts(client)

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._redis.hgetall(record_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    def begin_attempt(self, job_id: str) -> JobRecord | None:
        """Count an attempt and move the job to IN_PROGRESS, in one round trip.

        Returns the record, or None when the job was cancelled, finished or expired meanwhile and must not run.
        A redelivery after a lost worker finds the job IN_PROGRESS and runs it again as the next attempt.
        """
        call = lifecycle.begin_attempt(job_id, now=time.time(), stream_maxlen=self._stream_maxlen)
        return lifecycle.claimed(self._scripts(call))

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Record progress; answers False when the job has been cancelled (or expired) and should stop."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(record_key(job_id), mapping={"chunks_done": done, "chunks_total": total})
        pipe.xadd(
            events_key(job_id),
            {"type": "progress", "done": done, "total": total},
            maxlen=self._stream_maxlen,
            approximate=True,
        )
        pipe.hget(record_key(job_id), "status")
        status = pipe.execute()[-1]
        return status is not None and as_text(status) != JobStatus.CANCELLED

    def cancelled(self, job_id: str) -> bool:
        """Whether the job has been cancelled (or has expired) and its work should stop."""
        status = self._redis.hget(record_key(job_id), "status")
        return status is None or as_text(status) == JobStatus.CANCELLED

    def publish_audio(self, job_id: str, attempt: int, data: bytes) -> None:
        """Put audio on the job's stream for its caller. With AUDIO_STREAM_MAX_BYTES unread there already, wait
        for the caller to read (Redis runs with `noeviction`: a full one stops the queue); raises CallerNotReading
        when it reads nothing for AUDIO_STREAM_STALL_S."""
        if not data:
            return
        call = lifecycle.publish_audio(
            job_id, attempt, data, stream_maxlen=self._stream_maxlen, max_unread=self._audio_max_bytes
        )
        waiting_since, seen_unread = time.monotonic(), -1
        while True:
            outcome, unread = self._scripts(call)
            if outcome >= 0:
                return
            if unread != seen_unread:
                waiting_since, seen_unread = time.monotonic(), unread
            elif time.monotonic() - waiting_since > self._audio_stall_s:
                raise CallerNotReading(
                    f"The caller read none of its audio for {self._audio_stall_s:g} s while {unread} bytes waited "
                    "for it; the job was stopped."
                )
            time.sleep(BACKLOG_POLL_S)

    def finish(
        self,
        record: JobRecord,
        status: JobStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> TransitionResult:
        now = time.time()
        call = lifecycle.finish(
            record, status, now=now, stream_maxlen=self._stream_maxlen, output=output, error=error, fields=fields
        )
        result = lifecycle.moved(self._scripts(call))
        if result.applied and status == JobStatus.COMPLETED and fields:
            self._count_completed(record, now, fields)
        return result

    def _count_completed(self, record: JobRecord, finished_at: float, metrics: dict[str, str]) -> None:
        latency = finished_at - record.created_at
        pipe = self._redis.pipeline(transaction=False)
        pipe.incrbyfloat(AUDIO_SECONDS_KEY, float(metrics["audio_s"]))
        pipe.incrbyfloat(ENGINE_SECONDS_KEY, float(metrics["engine_ms"]) / 1000)
        pipe.incrbyfloat(LATENCY_SUM_KEY, latency)
        for bound in LATENCY_BUCKETS_S:
            if latency <= bound:
                pipe.incr(latency_bucket_key(bound))
        pipe.execute()

    def fail_before_start(self, record: JobRecord, error: str) -> TransitionResult:
        """End a job that will not run again (too many attempts) without it ever reaching the engine."""
        call = lifecycle.fail_before_start(record, error, now=time.time(), stream_maxlen=self._stream_maxlen)
        return lifecycle.moved(self._scripts(call))

    def enqueue(self, queue: str, message: str) -> None:
        """Put a task message on its queue (tasks/publish.py builds it)."""
        self._redis.lpush(queue, message)
