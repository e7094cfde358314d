"""The worker's side of the job record: start, progress, audio, finish. Synchronous (workers are)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from core.settings import Settings
from tasks.jobs import (
    ACTIVE_STATUSES,
    BEGIN_ATTEMPT_SCRIPT,
    PUBLISH_AUDIO_SCRIPT,
    TRANSITION_SCRIPT,
    JobRecord,
    JobStatus,
    TransitionResult,
    as_text,
    begin_attempt_keys,
    events_key,
    record_key,
    transition_args,
    transition_result,
)
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
        self._transition = client.register_script(TRANSITION_SCRIPT)
        self._begin = client.register_script(BEGIN_ATTEMPT_SCRIPT)
        self._publish = client.register_script(PUBLISH_AUDIO_SCRIPT)

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._redis.hgetall(record_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    def begin_attempt(self, job_id: str) -> JobRecord | None:
        """Count an attempt and move the job to IN_PROGRESS, in one round trip.

        Returns the record, or None when the job was cancelled, finished or expired meanwhile and must not run.
        A redelivery after a lost worker finds the job IN_PROGRESS and runs it again as the next attempt.
        """
        raw = self._begin(keys=begin_attempt_keys(job_id), args=[repr(time.time()), self._stream_maxlen])
        if not raw:
            return None
        return JobRecord.from_hash(dict(zip(raw[::2], raw[1::2], strict=True)))

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
        keys = [record_key(job_id), events_key(job_id)]
        waiting_since, seen_unread = time.monotonic(), -1
        while True:
            outcome, unread = self._publish(keys=keys, args=[attempt, data, self._stream_maxlen, self._audio_max_bytes])
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
        record_fields = {"finished_at": repr(time.time()), **(fields or {})}
        if output is not None:
            record_fields["output"] = json.dumps(output, separators=(",", ":"))
        if error is not None:
            record_fields["error"] = error
        result = self._move(record, status, frozenset({JobStatus.IN_PROGRESS}), record.retention_s, record_fields)
        if result.applied and status == JobStatus.COMPLETED and fields:
            self._count_completed(record, float(record_fields["finished_at"]), fields)
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
        fields = {"finished_at": repr(time.time()), "error": error}
        return self._move(record, JobStatus.FAILED, ACTIVE_STATUSES, record.retention_s, fields)

    def _move(
        self,
        record: JobRecord,
        to: JobStatus,
        allowed_from: frozenset[JobStatus],
        ttl_s: int,
        fields: dict[str, str],
        *,
        now: float | None = None,
    ) -> TransitionResult:
        keys, argv = transition_args(
            record.id,
            to,
            allowed_from,
            now=now or time.time(),
            ttl_s=ttl_s,
            stream_maxlen=self._stream_maxlen,
            fields=fields,
        )
        return transition_result(self._transition(keys=keys, args=argv))
