"""One synthesis job from start to end: claim the record, synthesize, deliver, record the outcome."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from core.settings import Settings
from core.storage import ObjectStore, StorageError, output_key
from tasks.jobs import ERROR_TYPE_FIELD, REQUEST_REJECTED, JobRecord, JobStatus
from tasks.spec import CONTENT_TYPES, FILE_EXTENSIONS, SynthesisSpec
from voices.errors import UnknownVoiceError, VoicePathError
from voices.registry import VoiceRegistry
from workers.audio.loudness import to_int16
from workers.engine_host.client import EngineLost
from workers.engines.base import EngineError
from workers.job_updates import CallerNotReading, JobUpdates
from workers.pipeline import PipelineHooks, SynthesisCancelled, SynthesisPipeline, SynthesisResult
from workers.webhooks import WebhookNotifier

log = logging.getLogger(__name__)

REQUEST_ERRORS = (EngineError, UnknownVoiceError, VoicePathError, ValueError)
"""The request cannot be served as asked (a clip too short for Turbo, an unknown language...): the caller's to fix."""
CALLER_ERRORS = (*REQUEST_ERRORS, StorageError, CallerNotReading)
"""Failures whose message tells the caller what went wrong; anything else is logged and reported generically."""


@dataclass(frozen=True)
class Ending:
    status: JobStatus
    output: dict[str, Any] | None = None
    error: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """More fields for the record: engine time and audio length, or the kind of error."""


@dataclass
class JobRunner:
    settings: Settings
    pipeline: SynthesisPipeline
    voices: VoiceRegistry
    updates: JobUpdates
    store: ObjectStore | None
    webhooks: WebhookNotifier

    def run(self, job_id: str) -> JobStatus | None:
        """Run one attempt of the job. Raises EngineLost when the engine process went away mid-attempt: the job
        stays IN_PROGRESS and must be run again (its next attempt is counted like one after a lost worker)."""
        record = self.updates.begin_attempt(job_id)
        if record is None:
            log.info("job %s: not runnable (cancelled, finished or expired), skipped", job_id)
            return None
        attempt = record.attempts
        if attempt > self.settings.max_attempts:
            message = (
                f"The job was cut short {attempt - 1} times (its worker or engine process was lost) and was given "
                f"up after {self.settings.max_attempts} attempts."
            )
            log.error("job %s: %s", job_id, message)
            if self.updates.fail_before_start(record, message).applied:
                self.webhooks.notify(record, "completed")
            return JobStatus.FAILED
        log.info("job %s: attempt %d started", job_id, attempt)
        if attempt == 1:
            self.webhooks.notify(record, "started")
        ending = self._synthesize(record, attempt)
        status = ending.status
        outcome = self.updates.finish(record, status, output=ending.output, error=ending.error, fields=ending.fields)
        if not outcome.applied:
            log.info("job %s: ended %s by someone else before it finished", job_id, outcome.previous)
            return outcome.previous
        log.info("job %s: %s", job_id, status)
        self.webhooks.notify(record, "completed")
        return status

    def _progress(self, record: JobRecord, done: int, total: int) -> bool:
        keep_going = self.updates.progress(record.id, done, total)
        if done:
            self.webhooks.progress(record)
        return keep_going

    def _synthesize(self, record: JobRecord, attempt: int) -> Ending:
        job_id = record.id
        try:
            spec = SynthesisSpec.model_validate(record.request)
            publish = partial(self.updates.publish_audio, job_id, attempt)
            hooks = PipelineHooks(
                on_audio=publish if spec.publish_audio else _discard,
                on_samples=(lambda samples: publish(to_int16(samples).tobytes())) if spec.stream_pcm else _discard,
                on_progress=lambda done, total: self._progress(record, done, total),
                keep_going=lambda: not self.updates.cancelled(job_id),
            )
            result = self.pipeline.run(spec, self._reference_audio(spec), hooks, request_prefix=f"{job_id}:{attempt}")
            metrics = {"engine_ms": f"{result.engine_s * 1000:.3f}", "audio_s": f"{result.duration_s:.3f}"}
            return Ending(JobStatus.COMPLETED, output=self._deliver(job_id, spec, result), fields=metrics)
        except SynthesisCancelled:
            log.info("job %s: cancelled while synthesizing", job_id)
            return Ending(JobStatus.CANCELLED)
        except EngineLost:
            log.warning("job %s: attempt %d lost its engine process; it will run again", job_id, attempt)
            raise
        except SoftTimeLimitExceeded:
            log.warning("job %s: over its time limit", job_id)
            return Ending(JobStatus.TIMED_OUT, error="The job ran past its execution time limit.")
        except CALLER_ERRORS as exc:
            log.warning("job %s: failed: %s", job_id, exc)
            rejected = isinstance(exc, REQUEST_ERRORS)
            return Ending(
                JobStatus.FAILED, error=str(exc), fields={ERROR_TYPE_FIELD: REQUEST_REJECTED} if rejected else {}
            )
        except Exception:
            log.exception("job %s: internal error", job_id)
            return Ending(JobStatus.FAILED, error="Internal error while synthesizing; see the worker log.")

    def _reference_audio(self, spec: SynthesisSpec) -> Path | None:
        if spec.audio_prompt:
            return self.voices.resolve_prompt(spec.audio_prompt)
        if spec.voice:
            return self.voices.resolve(spec.voice).reference_path
        return None

    def _deliver(self, job_id: str, spec: SynthesisSpec, result: SynthesisResult) -> dict[str, Any]:
        content_type = CONTENT_TYPES[spec.response_format]
        url = None
        if self.store is not None and spec.store_output:
            key = output_key(self.settings, job_id, FILE_EXTENSIONS[spec.response_format])
            self.store.put(key, result.audio, content_type)
            url = self.store.url(key)
        if spec.output_shape == "custom":
            output: dict[str, Any] = {
                "status": "success",
                "sample_rate": result.sample_rate,
                "duration_sec": round(result.duration_s, 3),
            }
            output.update({"audio_url": url} if url else {"audio_base64": _base64(result.audio)})
            return output
        output = {"_content_type": content_type, "duration_sec": round(result.duration_s, 3)}
        if not spec.publish_audio:
            # The caller reads the job record, not the event stream: the audio must be in the output.
            output["audio"] = _base64(result.audio)
        if url:
            output["audio_url"] = url
        return output


def _base64(audio: bytes) -> str:
    return base64.b64encode(audio).decode()


def _discard(_: object) -> None:
    return None
