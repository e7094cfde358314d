"""The API's side of the job queue, on redis.asyncio: submit, read, cancel, retry, purge, and wait on events."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from celery import Celery
from redis.exceptions import RedisError

from core.redis_clients import blocking_slice_s
from core.settings import Settings
from tasks import lifecycle, names
from tasks.jobs import (
    QUEUED_SET,
    RUNNING_SET,
    JobRecord,
    JobStatus,
    TransitionResult,
    as_text,
    events_key,
    record_key,
    stat_key,
)
from tasks.presence import PRESENCE_PREFIX, WorkerState
from tasks.publish import task_envelope, webhook_envelope
from tasks.spec import SynthesisSpec
from tasks.status import DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS_FIELD


class QueueUnavailable(Exception):
    """The broker could not be reached."""


class QueueFull(Exception):
    def __init__(self, depth: int) -> None:
        super().__init__(f"{depth} jobs are waiting")
        self.depth = depth


@dataclass(frozen=True)
class JobEvent:
    id: str
    type: str
    fields: dict[str, bytes]

    @property
    def status(self) -> JobStatus | None:
        raw = self.fields.get("status")
        return JobStatus(raw.decode()) if raw else None


class JobClient:
    def __init__(self, settings: Settings, client: aioredis.Redis, celery_app: Celery) -> None:
        self._settings = settings
        self._redis = client
        self._celery = celery_app
        self._scripts = lifecycle.Scripts(client)
        # Records expire on their own; ids still in the queued set long after any job's lifetime are stale.
        self._stale_after_s = max(settings.job_ttl_s, settings.sync_job_ttl_s) * 4

    async def submit(
        self,
        spec: SynthesisSpec,
        *,
        ttl_s: int | None = None,
        retention_s: int | None = None,
        execution_timeout_s: float | None = None,
        webhook: str | None = None,
        webhook_events: Sequence[str] = DEFAULT_WEBHOOK_EVENTS,
        job_id: str | None = None,
        max_queue_depth: int | None = None,
    ) -> JobRecord:
        """Write the record and enqueue its task atomically; with `max_queue_depth`, refuse (QueueFull) at that
        many queued jobs instead."""
        settings = self._settings
        record = JobRecord(
            id=job_id or str(uuid.uuid4()),
            status=JobStatus.IN_QUEUE,
            request=spec.model_dump(mode="json"),
            created_at=time.time(),
            ttl_s=ttl_s or settings.job_ttl_s,
            retention_s=retention_s or settings.job_ttl_s,
            webhook=webhook,
        )
        if execution_timeout_s is not None:
            record.extra["execution_timeout_s"] = repr(execution_timeout_s)
        if webhook:
            record.extra[WEBHOOK_EVENTS_FIELD] = json.dumps(sorted(set(webhook_events)))
        # The record and the task message go in one transaction: no record without its message, one round trip.
        envelope = self._synthesis_envelope(record.id, execution_timeout_s)
        call = lifecycle.submit(
            record,
            envelope,
            queue=settings.tts_queue,
            stale_before=record.created_at - self._stale_after_s,
            max_queue_depth=max_queue_depth,
        )
        try:
            depth = await self._scripts(call)
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        if depth < 0:
            raise QueueFull(-int(depth) - 1)
        return record

    def _synthesis_envelope(self, job_id: str, execution_timeout_s: float | None) -> dict[str, Any]:
        queue = self._settings.tts_queue
        return task_envelope(
            self._celery, names.SYNTHESIZE, job_id, [job_id], queue, **_time_limits(execution_timeout_s)
        )

    async def get(self, job_id: str) -> JobRecord | None:
        raw = await self._redis.hgetall(record_key(job_id))
        return JobRecord.from_hash(raw) if raw else None

    async def cancel(self, job_id: str) -> TransitionResult:
        record = await self.get(job_id)
        if record is None:
            return TransitionResult(applied=False, previous=None)
        call = lifecycle.cancel(record, now=time.time(), stream_maxlen=self._settings.audio_stream_maxlen)
        result = lifecycle.moved(await self._scripts(call))
        if result.applied:
            await self._notify_webhook(job_id, "completed")
        return result

    async def _notify_webhook(self, job_id: str, event: str) -> None:
        record = await self.get(job_id)
        message = webhook_envelope(self._celery, self._settings, record, event) if record else None
        if message is not None:
            await self._redis.lpush(*message)

    async def retry(self, job_id: str) -> TransitionResult:
        record = await self.get(job_id)
        if record is None:
            return TransitionResult(applied=False, previous=None)
        call = lifecycle.retry(record, now=time.time(), stream_maxlen=self._settings.audio_stream_maxlen)
        result = lifecycle.moved(await self._scripts(call))
        if result.applied:
            timeout = record.extra.get("execution_timeout_s")
            envelope = self._synthesis_envelope(job_id, float(timeout) if timeout else None)
            await self._redis.lpush(self._settings.tts_queue, json.dumps(envelope))
        return result

    async def purge_queue(self) -> int:
        """Cancel every queued job; workers skip cancelled jobs, so none of them runs."""
        removed = 0
        queued: Any = await self._redis.zrange(QUEUED_SET, 0, -1)
        for raw_id in queued:
            job_id = raw_id.decode()
            result = await self.cancel(job_id)
            if result.applied:
                removed += 1
            elif result.previous is None:
                await self._redis.zrem(QUEUED_SET, job_id)
        return removed

    async def counts(self) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(QUEUED_SET)
        pipe.zcard(RUNNING_SET)
        for name in ("completed", "failed", "retried"):
            pipe.get(stat_key(name))
        in_queue, in_progress, completed, failed, retried = await pipe.execute()
        return {
            "completed": int(completed or 0),
            "failed": int(failed or 0),
            "inProgress": int(in_progress),
            "inQueue": int(in_queue),
            "retried": int(retried or 0),
        }

    async def worker_counts(self) -> dict[str, int]:
        counts = {"idle": 0, "running": 0}
        keys = [key async for key in self._redis.scan_iter(match=f"{PRESENCE_PREFIX}*", count=500)]
        states: Any = await self._redis.mget(keys) if keys else []
        for state in states:
            if state is not None:
                counts["running" if state.decode() == WorkerState.BUSY else "idle"] += 1
        return counts

    async def events(
        self, job_id: str, *, timeout_s: float, after: str = "0", consume: bool = False
    ) -> AsyncIterator[JobEvent]:
        """Yield the job's events from the beginning (or after `after`) until a terminal status or the timeout.

        Raises TimeoutError when the deadline passes first. Blocks in XREAD: no polling loop. With `consume` (the
        one caller that waits for a job's audio), the events it has handled are removed from the stream as it
        goes, so Redis holds only what is still unread and the worker may publish more.
        """
        deadline = time.monotonic() + timeout_s
        key = events_key(job_id)
        slice_ms = int(blocking_slice_s(self._settings) * 1000)
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise TimeoutError
            # Never block past the socket timeout: a long wait is many short ones (core/redis_clients.py).
            reply: Any = await self._redis.xread({key: after}, block=min(remaining_ms, slice_ms), count=64)
            audio_bytes = 0
            for _stream, entries in reply or ():
                for entry_id, raw_fields in entries:
                    event = _event(entry_id, raw_fields)
                    after = event.id
                    yield event
                    if event.type == "audio":
                        audio_bytes += len(event.fields["data"])
                    if event.type == "status" and event.status is not None and event.status.is_terminal:
                        if consume:
                            await self._audio_read(job_id, after, audio_bytes)
                        return
            if consume and reply:
                await self._audio_read(job_id, after, audio_bytes)

    async def _audio_read(self, job_id: str, last_id: str, audio_bytes: int) -> None:
        await self._scripts(lifecycle.audio_read(job_id, last_id, audio_bytes))

    async def discard_events(self, job_id: str) -> None:
        """Empty the job's stream (its caller has gone); the key keeps its TTL, so nothing outlives the job."""
        await self._redis.xtrim(events_key(job_id), maxlen=0, approximate=False)

    async def stream_since(self, job_id: str, cursor: str) -> tuple[list[dict[str, Any]], str]:
        """What `/stream/{id}` gives after event id `cursor`, and the new cursor: progress, or for a job that
        streams its audio (custom `stream: true`) the pieces of 16-bit PCM, then the final output once COMPLETED.
        Audio pieces handed out are removed from the stream (Runpod's stream is consumed as it is read)."""
        start = "-" if cursor == "0" else f"({cursor}"
        outputs: list[dict[str, Any]] = []
        audio_bytes = 0
        entries: Any = await self._redis.xrange(events_key(job_id), min=start, max="+")
        for entry_id, raw_fields in entries:
            event = _event(entry_id, raw_fields)
            cursor = event.id
            if event.type == "progress":
                outputs.append({"progress": f"{as_text(event.fields['done'])}/{as_text(event.fields['total'])}"})
            elif event.type == "audio":
                pcm = event.fields["data"]
                audio_bytes += len(pcm)
                outputs.append(pcm_piece(pcm, self._settings.output_sample_rate))
            elif event.type == "status" and event.status == JobStatus.COMPLETED:
                record = await self.get(job_id)
                if record is not None and record.output is not None:
                    outputs.append(record.output)
        if audio_bytes:
            await self._audio_read(job_id, cursor, audio_bytes)
        return outputs, cursor

    async def set_field(self, job_id: str, name: str, value: str) -> None:
        await self._redis.hset(record_key(job_id), name, value)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False


def _time_limits(execution_timeout_s: float | None) -> dict[str, float | None]:
    if execution_timeout_s is None:
        return {"soft_time_limit": None, "time_limit": None}
    # The soft limit ends the job TIMED_OUT at the next chunk; the hard one is a backstop a little later.
    return {
        "soft_time_limit": execution_timeout_s,
        "time_limit": execution_timeout_s + max(5.0, execution_timeout_s * 0.1),
    }


def pcm_piece(pcm: bytes, sample_rate: int) -> dict[str, Any]:
    """One streamed piece of a custom job's audio, as `/stream/{id}` and the Runpod handler give it."""
    return {"audio_base64": base64.b64encode(pcm).decode(), "sample_rate": sample_rate, "encoding": "pcm_s16le"}


def _event(entry_id: bytes, raw_fields: dict[bytes, bytes]) -> JobEvent:
    fields = {key.decode(): value for key, value in raw_fields.items()}
    return JobEvent(id=entry_id.decode(), type=fields.pop("type").decode(), fields=fields)
