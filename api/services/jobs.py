"""The Runpod-compatible job API: request detection, submit, wait, status, cancel, retry, stream, purge, health."""

from __future__ import annotations

import json
import logging

from api.schemas.openai import SpeechPreview
from api.schemas.runpod import (
    Health,
    JobAccepted,
    JobCounts,
    JobState,
    JobStream,
    PurgeResult,
    RunRequest,
    StreamChunk,
    WorkerCounts,
)
from api.services.admission import Admission
from api.services.speech import speech_preview
from core.errors import APIError
from core.settings import Settings
from tasks.client import JobClient
from tasks.inputs import CustomInput, SpeechRequest
from tasks.jobs import JobRecord, JobStatus
from tasks.spec import SynthesisSpec
from tasks.status import status_body
from tasks.validation import job_spec
from voices.registry import VoiceRegistry

log = logging.getLogger(__name__)

STREAM_CURSOR_FIELD = "stream_cursor"


class JobService:
    def __init__(self, settings: Settings, jobs: JobClient, voices: VoiceRegistry, admission: Admission) -> None:
        self._settings = settings
        self._jobs = jobs
        self._voices = voices
        self._admission = admission

    def parse_input(self, job_input: SpeechRequest | CustomInput) -> SynthesisSpec:
        return job_spec(job_input, self._settings, self._voices)

    def preview(self, request: RunRequest) -> SpeechPreview:
        return speech_preview(self.parse_input(request.input), self._settings)

    async def submit(self, request: RunRequest, *, sync: bool) -> JobRecord:
        spec = self.parse_input(request.input)
        policy = request.policy
        retention = self._settings.sync_job_ttl_s if sync else self._settings.job_ttl_s
        return await self._admission.submit(
            spec,
            caller_waits=sync,
            ttl_s=(policy.ttl // 1000) if policy and policy.ttl else None,
            retention_s=retention,
            execution_timeout_s=(policy.executionTimeout / 1000) if policy and policy.executionTimeout else None,
            webhook=request.webhook,
            webhook_events=request.webhook_events,
        )

    async def run(self, request: RunRequest) -> JobAccepted:
        record = await self.submit(request, sync=False)
        return JobAccepted(id=record.id, status=record.status)

    async def run_sync(self, request: RunRequest, wait_ms: int) -> JobState:
        record = await self.submit(request, sync=True)
        try:
            async for _event in self._jobs.events(record.id, timeout_s=wait_ms / 1000):
                pass
        except TimeoutError:
            log.info("job %s: not finished within runsync's %d ms wait", record.id, wait_ms)
        return await self.status(record.id)

    async def status(self, job_id: str) -> JobState:
        return state_of(await self._record(job_id))

    async def cancel(self, job_id: str) -> JobAccepted:
        result = await self._jobs.cancel(job_id)
        if result.previous is None:
            raise _not_found(job_id)
        if not result.applied:
            raise APIError(
                409,
                f"Job {job_id} is already {result.previous}; only queued or running jobs can be cancelled.",
                code="job_not_active",
            )
        return JobAccepted(id=job_id, status=JobStatus.CANCELLED)

    async def retry(self, job_id: str) -> JobAccepted:
        result = await self._jobs.retry(job_id)
        if result.previous is None:
            raise _not_found(job_id)
        if not result.applied:
            raise APIError(
                409,
                f"Job {job_id} is {result.previous}; only FAILED or TIMED_OUT jobs can be retried.",
                code="job_not_retryable",
            )
        return JobAccepted(id=job_id, status=JobStatus.IN_QUEUE)

    async def stream(self, job_id: str) -> JobStream:
        """Progress since the previous call: Runpod's stream is consumed as it is read."""
        record = await self._record(job_id)
        cursor = record.extra.get(STREAM_CURSOR_FIELD, "0")
        chunks, cursor = await self._jobs.stream_since(job_id, cursor)
        await self._jobs.set_field(job_id, STREAM_CURSOR_FIELD, cursor)
        return JobStream(status=record.status, stream=[StreamChunk(output=chunk) for chunk in chunks])

    async def purge_queue(self) -> PurgeResult:
        return PurgeResult(removed=await self._jobs.purge_queue())

    async def health(self) -> Health:
        return Health(
            jobs=JobCounts(**await self._jobs.counts()),
            workers=WorkerCounts(**await self._jobs.worker_counts()),
        )

    async def _record(self, job_id: str) -> JobRecord:
        record = await self._jobs.get(job_id)
        if record is None:
            raise _not_found(job_id)
        return record


def state_of(record: JobRecord) -> JobState:
    return JobState.model_validate(status_body(record))


def _not_found(job_id: str) -> APIError:
    return APIError(404, f"Job {json.dumps(job_id)} not found (unknown or expired).", code="job_not_found")
