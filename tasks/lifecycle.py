"""A job's life, in one place: every change to its record and stream, which moves are allowed, what each writes.

Each change is a call of one of the Lua scripts in tasks/jobs.py (so each is atomic, and a cancel racing a finish
has one winner), built here as plain data. The API runs them on redis.asyncio (tasks/client.py), the workers on
redis (workers/job_updates.py), both through `Scripts`; neither builds script arguments of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.jobs import (
    ACTIVE_STATUSES,
    AUDIO_READ_SCRIPT,
    BEGIN_ATTEMPT_SCRIPT,
    PUBLISH_AUDIO_SCRIPT,
    QUEUED_SET,
    RUNNING_SET,
    STAT_FOR_STATUS,
    SUBMIT_SCRIPT,
    TRANSITION_SCRIPT,
    JobRecord,
    JobStatus,
    TransitionResult,
    as_text,
    events_key,
    record_key,
    stat_key,
)

RETRYABLE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
_CLEARED_ON_RETRY = ("output", "error", "finished_at", "started_at")


@dataclass(frozen=True)
class ScriptCall:
    script: str
    keys: list[str]
    args: list[Any]


class Scripts:
    """Runs ScriptCalls on one client (sync or asyncio: the result is then awaitable), each script registered once."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._registered: dict[str, Any] = {}

    def __call__(self, call: ScriptCall) -> Any:
        script = self._registered.get(call.script)
        if script is None:
            script = self._registered[call.script] = self._client.register_script(call.script)
        return script(keys=call.keys, args=call.args)


def submit(
    record: JobRecord, envelope: Mapping[str, Any], *, queue: str, stale_before: float, max_queue_depth: int | None
) -> ScriptCall:
    """Admit the job and enqueue its Celery message, in one step; the result is the new queue depth, or
    -(depth + 1) when the queue is full."""
    fields = [item for pair in {**record.to_hash(), **record.extra}.items() for item in pair]
    return ScriptCall(
        SUBMIT_SCRIPT,
        [record_key(record.id), events_key(record.id), QUEUED_SET, queue],
        [
            record.id,
            repr(record.created_at),
            repr(stale_before),
            max_queue_depth if max_queue_depth is not None else -1,
            record.ttl_s,
            json.dumps(envelope),
            *fields,
        ],
    )


def begin_attempt(job_id: str, *, now: float, stream_maxlen: int) -> ScriptCall:
    """Count an attempt and move the job to IN_PROGRESS (again, after a lost worker or engine). Read the result
    with `claimed`."""
    keys = [record_key(job_id), events_key(job_id), QUEUED_SET, RUNNING_SET, stat_key("retried")]
    return ScriptCall(BEGIN_ATTEMPT_SCRIPT, keys, [repr(now), stream_maxlen])


def claimed(raw: Any) -> JobRecord | None:
    """The record begin_attempt returned, or None when the job is not runnable (cancelled, finished, expired)."""
    if not raw:
        return None
    return JobRecord.from_hash(dict(zip(raw[::2], raw[1::2], strict=True)))


def cancel(record: JobRecord, *, now: float, stream_maxlen: int) -> ScriptCall:
    """A queued job never runs; a running one stops at the next decode step (its worker watches the status)."""
    return _move(record, JobStatus.CANCELLED, ACTIVE_STATUSES, record.retention_s, {"finished_at": repr(now)},
                 now=now, stream_maxlen=stream_maxlen)  # fmt: skip


def retry(record: JobRecord, *, now: float, stream_maxlen: int) -> ScriptCall:
    """A failed or timed-out job goes back in the queue from a clean record."""
    fields = {name: "" for name in _CLEARED_ON_RETRY} | {"attempts": "0", "chunks_done": "0"}
    return _move(record, JobStatus.IN_QUEUE, RETRYABLE_STATUSES, record.ttl_s, fields, now=now,
                 stream_maxlen=stream_maxlen)  # fmt: skip


def finish(
    record: JobRecord,
    status: JobStatus,
    *,
    now: float,
    stream_maxlen: int,
    output: dict[str, Any] | None = None,
    error: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> ScriptCall:
    """A running job's end, with its output or error and any more fields (engine time, audio length...)."""
    written = {"finished_at": repr(now), **(fields or {})}
    if output is not None:
        written["output"] = json.dumps(output, separators=(",", ":"))
    if error is not None:
        written["error"] = error
    allowed = frozenset({JobStatus.IN_PROGRESS})
    return _move(record, status, allowed, record.retention_s, written, now=now, stream_maxlen=stream_maxlen)


def fail_before_start(record: JobRecord, error: str, *, now: float, stream_maxlen: int) -> ScriptCall:
    """End a job that will not run again (too many attempts) without it reaching the engine."""
    fields = {"finished_at": repr(now), "error": error}
    return _move(record, JobStatus.FAILED, ACTIVE_STATUSES, record.retention_s, fields, now=now,
                 stream_maxlen=stream_maxlen)  # fmt: skip


def moved(raw: list[Any]) -> TransitionResult:
    """What a status change (cancel, retry, finish, fail_before_start) did."""
    applied_from, current = raw
    previous = JobStatus(as_text(current)) if current else None
    return TransitionResult(applied=bool(applied_from), previous=previous)


def publish_audio(job_id: str, attempt: int, data: bytes, *, stream_maxlen: int, max_unread: int) -> ScriptCall:
    """Put audio on the job's stream for its caller; the result is {1, unread} when added, {0, 0} when the job is
    no longer running, {-1, unread} when its caller already has `max_unread` bytes to read."""
    return ScriptCall(
        PUBLISH_AUDIO_SCRIPT, [record_key(job_id), events_key(job_id)], [attempt, data, stream_maxlen, max_unread]
    )


def audio_read(job_id: str, last_id: str, audio_bytes: int) -> ScriptCall:
    """The caller has handled every event up to `last_id`, `audio_bytes` of audio among them: free them."""
    milliseconds, sequence = last_id.split("-")
    next_id = f"{milliseconds}-{int(sequence) + 1}"
    return ScriptCall(AUDIO_READ_SCRIPT, [record_key(job_id), events_key(job_id)], [next_id, audio_bytes])


def _move(
    record: JobRecord,
    to: JobStatus,
    allowed_from: frozenset[JobStatus],
    ttl_s: int,
    fields: Mapping[str, str],
    *,
    now: float,
    stream_maxlen: int,
) -> ScriptCall:
    stat = STAT_FOR_STATUS.get(to)
    keys = [record_key(record.id), events_key(record.id), QUEUED_SET, RUNNING_SET, stat_key(stat) if stat else ""]
    args: list[Any] = [to.value, repr(now), ",".join(sorted(s.value for s in allowed_from)), ttl_s, stream_maxlen]
    for name, value in fields.items():
        args += [name, value]
    return ScriptCall(TRANSITION_SCRIPT, keys, args)
