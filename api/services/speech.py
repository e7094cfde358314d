"""OpenAI speech: validate, enqueue, and hand back the job's audio as the worker makes it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from api.schemas.openai import SpeechPreview, SpeechUsage
from api.services.admission import Admission
from core.errors import APIError
from core.settings import Settings
from tasks.client import JobClient, JobEvent
from tasks.inputs import SpeechRequest
from tasks.jobs import ERROR_TYPE_FIELD, REQUEST_REJECTED, JobStatus
from tasks.spec import CONTENT_TYPES, SynthesisSpec
from tasks.validation import validate_speech
from text.front import engine_chunks, is_normalized, spoken_language
from voices.registry import VoiceRegistry

log = logging.getLogger(__name__)

SPEECH_TOKENS_PER_SECOND = 25
"""ChatterBox emits 25 speech tokens per second of audio; `usage.output_tokens` counts them that way."""


class SpeechFailed(Exception):
    def __init__(self, status: JobStatus, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.rejected = rejected
        """The worker could not serve the request as asked (the caller's to fix), rather than failing itself."""


def speech_preview(spec: SynthesisSpec, settings: Settings) -> SpeechPreview:
    return SpeechPreview(
        model=spec.model,
        voice=spec.voice or spec.audio_prompt,
        language=spoken_language(spec, settings),
        normalized=is_normalized(spec, settings),
        chunks=engine_chunks(spec, settings),
    )


@dataclass
class SpeechStream:
    """One response's worth of audio: the first chunk already in hand, the rest still coming."""

    job_id: str
    content_type: str
    input_text: str
    jobs: JobClient
    first_chunk: bytes
    rest: AsyncIterator[bytes]
    completed: bool = field(default=False)
    """Every byte of the job's audio went out."""
    _released: bool = field(default=False)

    async def audio(self) -> AsyncIterator[bytes]:
        try:
            if self.first_chunk:
                yield self.first_chunk
            async for chunk in self.rest:
                yield chunk
            self.completed = True
        except (SpeechFailed, TimeoutError) as exc:
            # The status line has gone out already: all that is left is to end the body early and log why.
            log.error("job %s: audio stream ended early: %s", self.job_id, exc)
        finally:
            await self.release()

    async def sse(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.audio():
                yield _sse({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode()})
            if self.completed:
                yield _sse({"type": "speech.audio.done", "usage": (await self._usage()).model_dump()})
                yield b"data: [DONE]\r\n\r\n"
            else:
                yield _sse({"type": "error", "error": {"message": "Synthesis ended early.", "type": "server_error"}})
        finally:
            await self.release()

    async def release(self) -> None:
        """Cancel the job unless it finished: a caller who went away should not keep a GPU busy."""
        if not (self.completed or self._released):
            self._released = True
            # On a disconnect Starlette cancels the response task: unshielded, this await would be cancelled too.
            with anyio.CancelScope(shield=True):
                result = await self.jobs.cancel(self.job_id)
                await self.jobs.discard_events(self.job_id)
            if result.applied:
                log.info("job %s: cancelled, its caller went away", self.job_id)

    async def _usage(self) -> SpeechUsage:
        record = await self.jobs.get(self.job_id)
        seconds = float((record.output or {}).get("duration_sec", 0)) if record else 0.0
        input_tokens = len(self.input_text.split())
        output_tokens = round(seconds * SPEECH_TOKENS_PER_SECOND)
        return SpeechUsage(
            input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
        )


def _sse(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\r\n\r\n".encode()


class SpeechService:
    def __init__(self, settings: Settings, jobs: JobClient, voices: VoiceRegistry, admission: Admission) -> None:
        self._settings = settings
        self._jobs = jobs
        self._voices = voices
        self._admission = admission

    def preview(self, request: SpeechRequest) -> SpeechPreview:
        return speech_preview(validate_speech(request, self._settings, self._voices), self._settings)

    async def start(self, request: SpeechRequest, client_gone: Callable[[], Awaitable[None]]) -> SpeechStream:
        """Submit the job and wait for its first audio; `client_gone` returns when the caller disconnects, which
        cancels the job even before any audio exists."""
        spec = validate_speech(request, self._settings, self._voices).model_copy(
            update={"publish_audio": True, "store_output": False}
        )
        ttl = self._settings.sync_job_ttl_s
        record = await self._admission.submit(
            spec, caller_waits=True, ttl_s=max(ttl, int(self._settings.sync_wait_timeout_s)) + 60, retention_s=ttl
        )
        chunks = self._audio_of(record.id)
        try:
            first = await _unless_gone(anext(chunks, b""), client_gone)
        except ClientGone as exc:
            with anyio.CancelScope(shield=True):
                await self._jobs.cancel(record.id)
            log.info("job %s: cancelled, its caller went away before the first audio", record.id)
            raise APIError(499, "The client closed the request.", code="client_closed_request") from exc
        except SpeechFailed as exc:
            raise _speech_error(exc, record.id) from exc
        except TimeoutError as exc:
            await self._jobs.cancel(record.id)
            raise APIError(
                504,
                f"Speech was not ready within {self._settings.sync_wait_timeout_s:g} s; the job was cancelled.",
                code="timeout",
                headers={"X-Job-Id": record.id},
            ) from exc
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._jobs.cancel(record.id)
            raise
        log.info("job %s: first audio ready, streaming", record.id)
        return SpeechStream(
            job_id=record.id,
            content_type=CONTENT_TYPES[spec.response_format],
            input_text=spec.text,
            jobs=self._jobs,
            first_chunk=first,
            rest=chunks,
        )

    async def _audio_of(self, job_id: str) -> AsyncIterator[bytes]:
        attempt_streamed: bytes | None = None
        async for event in self._jobs.events(job_id, timeout_s=self._settings.sync_wait_timeout_s, consume=True):
            if event.type == "audio":
                attempt = event.fields["attempt"]
                if attempt_streamed is not None and attempt != attempt_streamed:
                    raise SpeechFailed(JobStatus.FAILED, "The worker restarted the job after audio was sent.")
                attempt_streamed = attempt
                yield event.fields["data"]
            elif _is_terminal(event) and event.status != JobStatus.COMPLETED:
                record = await self._jobs.get(job_id)
                message = (record.error if record else None) or f"The job ended {event.status}."
                rejected = record is not None and record.extra.get(ERROR_TYPE_FIELD) == REQUEST_REJECTED
                raise SpeechFailed(event.status or JobStatus.FAILED, message, rejected=rejected)


class ClientGone(Exception):
    pass


async def _unless_gone(work: Awaitable[bytes], client_gone: Callable[[], Awaitable[None]]) -> bytes:
    work_task = asyncio.ensure_future(work)
    gone_task = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({work_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone_task.cancel()
        if not work_task.done():
            work_task.cancel()
    if not work_task.done() or work_task.cancelled():
        raise ClientGone
    return work_task.result()


def _is_terminal(event: JobEvent) -> bool:
    return event.type == "status" and event.status is not None and event.status.is_terminal


def _speech_error(exc: SpeechFailed, job_id: str) -> APIError:
    headers = {"X-Job-Id": job_id}
    if exc.status == JobStatus.TIMED_OUT:
        return APIError(504, exc.message, code="timeout", headers=headers)
    if exc.status == JobStatus.CANCELLED:
        return APIError(409, "The job was cancelled before it finished.", code="cancelled", headers=headers)
    if exc.rejected:
        return APIError(400, exc.message, code="synthesis_rejected", headers=headers)
    return APIError(500, exc.message, code="synthesis_failed", headers=headers)
