"""The Runpod-compatible job API's models (CONTRACTS.md section 2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from api.schemas.json import JsonInt
from api.schemas.openai import SpeechRequest
from core.language import LanguageTag
from tasks.jobs import JobStatus
from tasks.spec import AudioFormat
from tasks.text import SPEAKABLE_PATTERN

WEBHOOK_URL_PATTERN = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$"
"""An absolute http(s) URL with a host; the worker's SSRF guard decides later whether it may be reached."""

WebhookEvent = Literal["started", "progress", "completed"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    executionTimeout: JsonInt | None = Field(default=None, ge=1000, le=7 * 86_400_000, description="Milliseconds.")  # noqa: N815
    ttl: JsonInt | None = Field(default=None, ge=10_000, le=7 * 86_400_000, description="Milliseconds.")
    lowPriority: bool | None = None  # noqa: N815


class CustomInput(BaseModel):
    """The original custom request, kept backward compatible: unknown keys are ignored as before. An input with
    `model` and `voice` and no `audio_prompt` is an OpenAI request instead, which the schema says with `not`."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={"not": {"required": ["model", "voice"], "not": {"required": ["audio_prompt"]}}},
    )

    text: str = Field(min_length=1, json_schema_extra={"pattern": SPEAKABLE_PATTERN})
    audio_prompt: str | None = None
    temperature: float = Field(default=0.8, gt=0, le=5)
    top_k: JsonInt = Field(default=1000, ge=1)
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
    stream: bool = Field(
        default=False,
        description="Also stream the audio as it is made: `/stream/{id}` gives pieces of base64 16-bit PCM "
        "(`audio_base64`, `sample_rate`, `encoding`), then the final output.",
    )


OPENAI_INPUT = "openai"
CUSTOM_INPUT = "custom"
INPUT_KINDS = frozenset({OPENAI_INPUT, CUSTOM_INPUT})
"""The tags of the input union, which appear in validation errors' locations but are not parameters."""


def input_kind(value: object) -> str | None:
    """The seed's detection: `model` and `voice` present and `audio_prompt` absent means an OpenAI request."""
    if isinstance(value, SpeechRequest):
        return OPENAI_INPUT
    if isinstance(value, CustomInput):
        return CUSTOM_INPUT
    if isinstance(value, dict):
        return OPENAI_INPUT if "model" in value and "voice" in value and "audio_prompt" not in value else CUSTOM_INPUT
    return None


JobInput = Annotated[
    Annotated[SpeechRequest, Tag(OPENAI_INPUT)] | Annotated[CustomInput, Tag(CUSTOM_INPUT)],
    Discriminator(
        input_kind,
        custom_error_type="job_input",
        custom_error_message="Input should be an object: an OpenAI speech request or the custom request",
    ),
]


class RunRequest(BaseModel):
    """`POST /run` and `/runsync`. Runpod-only keys this service does not use (s3Config...) are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    input: JobInput
    webhook: str | None = Field(
        default=None,
        max_length=2048,
        pattern=WEBHOOK_URL_PATTERN,
        description="An http(s) URL, POSTed the job's status body when it ends.",
    )
    webhook_events: list[WebhookEvent] = Field(default=["completed"], min_length=1)
    policy: Policy | None = None


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
