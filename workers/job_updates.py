"""The worker's side of the job record: start, progress, audio, finish. Synchronous (workers are)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from tasks.jobs import (
    ACTIVE_STATUSES,
    TRANSITION_SCRIPT,
    JobRecord,
    JobStatus,
    TransitionResult,
    as_text,
    events_key,
    record_key,
    stat_key,
    transition_args,
    transition_result,
)


class JobUpdates:
    def __init__(self, client: redis.Redis, *, stream_maxlen: int) -> None:
        self._redis = client
        self._stream_maxlen = stream_maxlen
        self._transition = client.register_script(TRANSITION_SCRIPT)

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._redis.hgetall(record_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    def begin_attempt(self, job_id: str) -> tuple[JobRecord | None, int]:
        """Count an attempt and move the job to IN_PROGRESS.

        Returns the record (None when the job was cancelled, finished or expired meanwhile, so it must not run)
        and the attempt number. A redelivery after a lost worker finds the job IN_PROGRESS and runs it again.
        """
        record = self.get(job_id)
        if record is None or record.status not in ACTIVE_STATUSES:
            return None, 0
        attempt = int(self._redis.hincrby(record_key(job_id), "attempts", 1))
        if attempt > 1:
            self._redis.incr(stat_key("retried"))
        now = time.time()
        fields = {"chunks_done": "0"} | ({} if record.started_at is not None else {"started_at": repr(now)})
        result = self._move(record, JobStatus.IN_PROGRESS, ACTIVE_STATUSES, record.ttl_s, fields, now=now)
        if not result.applied:
            return None, attempt
        if record.started_at is None:
            record.started_at = now
        record.status = JobStatus.IN_PROGRESS
        record.attempts = attempt
        return record, attempt

    def progress(self, job_id: str, done: int, total: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(record_key(job_id), mapping={"chunks_done": done, "chunks_total": total})
        pipe.xadd(
            events_key(job_id),
            {"type": "progress", "done": done, "total": total},
            maxlen=self._stream_maxlen,
            approximate=True,
        )
        pipe.execute()

    def publish_audio(self, job_id: str, attempt: int, data: bytes) -> None:
        if data:
            self._redis.xadd(
                events_key(job_id),
                {"type": "audio", "attempt": attempt, "data": data},
                maxlen=self._stream_maxlen,
                approximate=True,
            )

    def is_cancelled(self, job_id: str) -> bool:
        status = self._redis.hget(record_key(job_id), "status")
        return status is None or as_text(status) == JobStatus.CANCELLED

    def finish(
        self,
        record: JobRecord,
        status: JobStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> TransitionResult:
        fields = {"finished_at": repr(time.time())}
        if output is not None:
            fields["output"] = json.dumps(output, separators=(",", ":"))
        if error is not None:
            fields["error"] = error
        return self._move(record, status, frozenset({JobStatus.IN_PROGRESS}), record.retention_s, fields)

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
