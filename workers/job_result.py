"""What a synthesis job ends with, whoever runs it (the Celery job runner, the Runpod handler): the clip it
clones, its output delivered in the request's shape, or the error its caller is told."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.storage import ObjectStore, StorageError, output_key
from tasks.spec import CONTENT_TYPES, FILE_EXTENSIONS, SynthesisSpec
from voices.errors import UnknownVoiceError, VoicePathError
from voices.registry import VoiceRegistry
from workers.engines.base import EngineError
from workers.job_updates import CallerNotReading
from workers.pipeline import SynthesisResult

log = logging.getLogger(__name__)

REQUEST_ERRORS = (EngineError, UnknownVoiceError, VoicePathError, ValueError)
"""The request cannot be served as asked (a clip too short for Turbo, an unknown language...): the caller's to fix."""
CALLER_ERRORS = (*REQUEST_ERRORS, StorageError, CallerNotReading)
"""Failures whose message tells the caller what went wrong; anything else is logged and reported generically."""
INTERNAL_ERROR = "Internal error while synthesizing; see the worker log."


@dataclass(frozen=True)
class Failure:
    """What the caller is told about a synthesis that raised."""

    message: str
    rejected: bool
    """The request cannot be served as asked (the caller's to fix), rather than the worker failing."""


def failure(job_id: str, exc: Exception) -> Failure:
    """The caller's view of an exception from the pipeline or delivery, logged here with the job id: its own
    message for CALLER_ERRORS, a generic one (and the traceback in the log) for anything else."""
    if isinstance(exc, CALLER_ERRORS):
        log.warning("job %s: failed: %s", job_id, exc)
        return Failure(str(exc), rejected=isinstance(exc, REQUEST_ERRORS))
    log.error("job %s: internal error", job_id, exc_info=exc)
    return Failure(INTERNAL_ERROR, rejected=False)


def reference_audio(voices: VoiceRegistry, spec: SynthesisSpec) -> Path | None:
    """The clip the engine clones: the custom request's `audio_prompt`, else the voice's, else none (the model's
    built-in voice)."""
    if spec.audio_prompt:
        return voices.resolve_prompt(spec.audio_prompt)
    if spec.voice:
        return voices.resolve(spec.voice).reference_path
    return None


def deliver(
    settings: Settings, store: ObjectStore | None, job_id: str, spec: SynthesisSpec, result: SynthesisResult
) -> dict[str, Any]:
    """The job's output: the audio uploaded to the object store (when there is one and the job wants it) and the
    output in the request's shape, `custom` (the seed's) or `openai`."""
    content_type = CONTENT_TYPES[spec.response_format]
    url = None
    if store is not None and spec.store_output:
        key = output_key(settings, job_id, FILE_EXTENSIONS[spec.response_format])
        store.put(key, result.audio, content_type)
        url = store.url(key)
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
