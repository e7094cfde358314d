"""The Runpod-compatible job API's models (CONTRACTS.md section 2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.language import LanguageTag
from tasks.jobs import JobStatus
from tasks.spec import AudioFormat

WebhookEvent = Literal["started", "progress", "completed"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    executionTimeout: int | None = Field(default=None, ge=1000, le=7 * 86_400_000, description="Milliseconds.")  # noqa: N815
    ttl: int | None = Field(default=None, ge=10_000, le=7 * 86_400_000, description="Milliseconds.")
    lowPriority: bool | None = None  # noqa: N815


class RunRequest(BaseModel):
    """`POST /run` and `/runsync`. Runpod-only keys this service does not use (s3Config...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    input: dict[str, Any]
    webhook: str | None = Field(default=None, max_length=2048, description="POSTed the job's status body when it ends.")
    webhook_events: list[WebhookEvent] = Field(default=["completed"], min_length=1)
    policy: Policy | None = None


class CustomInput(BaseModel):
    """The original custom request, kept backward compatible: unknown keys are ignored as before."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    audio_prompt: str | None = None
    temperature: float = Field(default=0.8, gt=0, le=5)
    top_k: int = Field(default=1000, ge=1)
    top_p: float = Field(default=0.95, gt=0, le=1)
    repetition_penalty: float = Field(default=1.2, ge=1, le=10)
    min_p: float = Field(default=0.0, ge=0, le=1)
    exaggeration: float = Field(default=0.0, ge=0, le=2)
    cfg_weight: float = Field(default=0.0, ge=0, le=1)
    norm_loudness: bool = True
    language: LanguageTag | None = None
    normalize: bool = Field(
        default=True, description="Spell out numbers, symbols and abbreviations (English; TEXT_NORMALIZATION)."
    )
    response_format: AudioFormat = Field(default="opus", description="Opus in Ogg (`.ogg`), as the seed returned.")


class JobAccepted(BaseModel):
    id: str
    status: JobStatus


class WebhookAttempt(BaseModel):
    at: float
    event: str
    status_code: int | None = None
    error: str | None = None


class WebhookDelivery(BaseModel):
    events: list[str]
    state: Literal["pending", "delivered", "failed", "disabled"]
    attempts: list[WebhookAttempt]


class JobState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    status: JobStatus
    delayTime: int  # noqa: N815
    executionTime: int  # noqa: N815
    retries: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None
    webhook: WebhookDelivery | None = None


class StreamChunk(BaseModel):
    output: dict[str, Any]


class JobStream(BaseModel):
    status: JobStatus
    stream: list[StreamChunk]


class PurgeResult(BaseModel):
    removed: int
    status: str = "completed"


class JobCounts(BaseModel):
    completed: int
    failed: int
    inProgress: int  # noqa: N815
    inQueue: int  # noqa: N815
    retried: int


class WorkerCounts(BaseModel):
    idle: int
    running: int


class Health(BaseModel):
    jobs: JobCounts
    workers: WorkerCounts
