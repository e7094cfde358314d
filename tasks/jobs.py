"""Job records: the contract between the API and the workers.

Celery's own task state cannot tell an unknown id from a queued one (both read PENDING), so every job has a record
of ours in Redis, written at enqueue time and keyed by the job id (which is also the Celery task id):

- `job:{id}`         hash: status, request, timestamps, progress, output or error, attempts. TTL on every write.
- `job:{id}:events`  stream: state changes, progress and (when the caller waits for bytes) encoded audio, in order.
                     Readers block on XREAD, so a waiter sees every event since the job began and never polls.
- `jobs:queued`      sorted set of queued ids (queue depth, purge-queue); `jobs:running` likewise.
- `stats:{name}`     counters for /health and /metrics.

Status changes are compare-and-set in Lua, so a cancel racing a worker's finish has exactly one winner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

QUEUED_SET = "jobs:queued"
RUNNING_SET = "jobs:running"
AUDIO_UNREAD_FIELD = "audio_unread"
"""Bytes of audio on the job's stream that its caller has not read yet (the bound is AUDIO_STREAM_MAX_BYTES)."""
ERROR_TYPE_FIELD = "error_type"
REQUEST_REJECTED = "invalid_request"
"""`error_type` of a job that failed because the request cannot be served as asked (the caller's to fix)."""


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})
ACTIVE_STATUSES = frozenset({JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS})

STAT_FOR_STATUS: Mapping[JobStatus, str] = {
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.TIMED_OUT: "failed",
    JobStatus.CANCELLED: "cancelled",
}


def record_key(job_id: str) -> str:
    return f"job:{job_id}"


def events_key(job_id: str) -> str:
    return f"job:{job_id}:events"


def stat_key(name: str) -> str:
    return f"stats:{name}"


@dataclass
class JobRecord:
    """What `job:{id}` holds, decoded."""

    id: str
    status: JobStatus
    request: dict[str, Any]
    created_at: float
    ttl_s: int
    retention_s: int
    started_at: float | None = None
    finished_at: float | None = None
    chunks_done: int = 0
    chunks_total: int = 0
    attempts: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None
    webhook: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def delay_ms(self) -> int:
        if self.started_at is None:
            return 0
        return max(0, round((self.started_at - self.created_at) * 1000))

    @property
    def execution_ms(self) -> int:
        if self.started_at is None or self.finished_at is None:
            return 0
        return max(0, round((self.finished_at - self.started_at) * 1000))

    def to_hash(self) -> dict[str, str]:
        fields = {
            "id": self.id,
            "status": self.status.value,
            "request": json.dumps(self.request, separators=(",", ":")),
            "created_at": repr(self.created_at),
            "ttl_s": str(self.ttl_s),
            "retention_s": str(self.retention_s),
            "chunks_done": str(self.chunks_done),
            "chunks_total": str(self.chunks_total),
            "attempts": str(self.attempts),
        }
        if self.webhook:
            fields["webhook"] = self.webhook
        return fields

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> JobRecord:
        values = {as_text(k): as_text(v) for k, v in raw.items()}
        known = {
            "id",
            "status",
            "request",
            "created_at",
            "ttl_s",
            "retention_s",
            "started_at",
            "finished_at",
            "chunks_done",
            "chunks_total",
            "attempts",
            "output",
            "error",
            "webhook",
        }
        return cls(
            id=values["id"],
            status=JobStatus(values["status"]),
            request=json.loads(values["request"]),
            created_at=float(values["created_at"]),
            ttl_s=int(values["ttl_s"]),
            retention_s=int(values["retention_s"]),
            started_at=_optional_float(values.get("started_at")),
            finished_at=_optional_float(values.get("finished_at")),
            chunks_done=int(values.get("chunks_done", "0")),
            chunks_total=int(values.get("chunks_total", "0")),
            attempts=int(values.get("attempts", "0")),
            output=json.loads(values["output"]) if values.get("output") else None,
            error=values.get("error") or None,
            webhook=values.get("webhook") or None,
            extra={k: v for k, v in values.items() if k not in known},
        )


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _optional_float(value: str | None) -> float | None:
    return float(value) if value else None


# KEYS: record, events, queued set, running set, stats key for the new status (or "").
# ARGV: new status, now, allowed-from statuses (comma-separated), ttl for the record,
#       stream maxlen, then field/value pairs to set alongside.
# Returns the previous status, or an error-free nil when the record is missing or the move is not allowed
# (with the current status as second element so callers can tell which).
TRANSITION_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {false, false} end
local allowed = false
for s in string.gmatch(ARGV[3], '([^,]+)') do
  if s == current then allowed = true end
end
if not allowed then return {false, current} end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
local id = redis.call('HGET', KEYS[1], 'id')
if ARGV[1] == 'IN_QUEUE' then
  redis.call('ZADD', KEYS[3], ARGV[2], id)
else
  redis.call('ZREM', KEYS[3], id)
end
if ARGV[1] == 'IN_PROGRESS' then
  redis.call('ZADD', KEYS[4], ARGV[2], id)
else
  redis.call('ZREM', KEYS[4], id)
end
if KEYS[5] ~= '' then redis.call('INCR', KEYS[5]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'status', 'status', ARGV[1])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return {current, current}
"""


@dataclass(frozen=True)
class TransitionResult:
    """Outcome of a compare-and-set status change."""

    applied: bool
    previous: JobStatus | None
    """Status before the attempt; None when no record exists (unknown or expired id)."""


# Claims a job for one attempt in one round trip: counts the attempt, moves it to IN_PROGRESS (again, after a lost
# worker), keeps the first start time, and returns the record as HGETALL would; false when the job is not runnable.
# KEYS: record, events, queued set, running set, retried counter.  ARGV: now, stream maxlen.
BEGIN_ATTEMPT_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'IN_QUEUE' and status ~= 'IN_PROGRESS' then return false end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempt > 1 then redis.call('INCR', KEYS[5]) end
redis.call('HSET', KEYS[1], 'status', 'IN_PROGRESS', 'chunks_done', '0')
local started = redis.call('HGET', KEYS[1], 'started_at')
if not started or started == '' then redis.call('HSET', KEYS[1], 'started_at', ARGV[1]) end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl_s'))
redis.call('EXPIRE', KEYS[1], ttl)
local id = redis.call('HGET', KEYS[1], 'id')
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[4], ARGV[1], id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'status', 'status', 'IN_PROGRESS')
redis.call('EXPIRE', KEYS[2], ttl)
return redis.call('HGETALL', KEYS[1])
"""


# Admits and enqueues a job in one round trip: prunes stale queued ids, refuses when the queue is full (returns
# -(depth + 1)), else writes the record, its first event and the Celery task message (returns the new depth).
# KEYS: record, events, queued set, broker queue list.
# ARGV: id, now, stale-before, max depth (-1: none), ttl, task message, then the record's field/value pairs.
SUBMIT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], 0, ARGV[3])
local depth = redis.call('ZCARD', KEYS[3])
local limit = tonumber(ARGV[4])
if limit >= 0 and depth >= limit then return -(depth + 1) end
for i = 7, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'type', 'status', 'status', 'IN_QUEUE')
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('LPUSH', KEYS[4], ARGV[6])
return depth + 1
"""


# Appends one piece of encoded audio to a running job's stream, unless its caller already has the bound unread
# (one piece is always let through when nothing is unread, so a bound smaller than a piece cannot wedge a job).
# KEYS: record, events.  ARGV: attempt, data, stream maxlen, most unread bytes.
# Returns {1, unread} when added, {0, 0} when the job is no longer running (nobody will read it: nothing is written,
# so a stream its caller has freed is not brought back), {-1, unread} when the bound is reached.
PUBLISH_AUDIO_SCRIPT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'IN_PROGRESS' then return {0, 0} end
local unread = tonumber(redis.call('HGET', KEYS[1], 'audio_unread') or '0')
local size = string.len(ARGV[2])
if unread > 0 and unread + size > tonumber(ARGV[4]) then return {-1, unread} end
redis.call('HINCRBY', KEYS[1], 'audio_unread', size)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'audio', 'attempt', ARGV[1], 'data', ARGV[2])
return {1, unread + size}
"""

# The caller has handled every event up to an id: drop them from the stream and count their audio as read.
# KEYS: record, events.  ARGV: the id after the last one handled, audio bytes among them.
AUDIO_READ_SCRIPT = """
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'audio_unread', -tonumber(ARGV[2]))
end
return redis.call('XLEN', KEYS[2])
"""
