"""One synthesis job from start to end: claim the record, synthesize, deliver, record the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from core.settings import Settings
from core.storage import ObjectStore
from tasks.jobs import ERROR_TYPE_FIELD, REQUEST_REJECTED, JobRecord, JobStatus
from tasks.spec import SynthesisSpec
from voices.registry import VoiceRegistry
from workers.audio.loudness import to_int16
from workers.engine_host.client import EngineLost
from workers.job_result import deliver, failure, reference_audio
from workers.job_updates import JobUpdates
from workers.pipeline import PipelineHooks, SynthesisCancelled, SynthesisPipeline
from workers.webhooks import WebhookNotifier

log = logging.getLogger(__name__)


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
            reference = reference_audio(self.voices, spec)
            result = self.pipeline.run(spec, reference, hooks, request_prefix=f"{job_id}:{attempt}")
            metrics = {"engine_ms": f"{result.engine_s * 1000:.3f}", "audio_s": f"{result.duration_s:.3f}"}
            return Ending(
                JobStatus.COMPLETED, output=deliver(self.settings, self.store, job_id, spec, result), fields=metrics
            )
        except SynthesisCancelled:
            log.info("job %s: cancelled while synthesizing", job_id)
            return Ending(JobStatus.CANCELLED)
        except EngineLost:
            log.warning("job %s: attempt %d lost its engine process; it will run again", job_id, attempt)
            raise
        except SoftTimeLimitExceeded:
            log.warning("job %s: over its time limit", job_id)
            return Ending(JobStatus.TIMED_OUT, error="The job ran past its execution time limit.")
        except Exception as exc:
            failed = failure(job_id, exc)
            fields = {ERROR_TYPE_FIELD: REQUEST_REJECTED} if failed.rejected else {}
            return Ending(JobStatus.FAILED, error=failed.message, fields=fields)


def _discard(_: object) -> None:
    return None
