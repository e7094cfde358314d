"""The Runpod-compatible job API's models (CONTRACTS.md section 2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.inputs import JobBody, JsonInt
from tasks.jobs import JobStatus

WEBHOOK_URL_PATTERN = r"^https?://[^\s/?#]+(?:[/?#]\S*)?$"
"""An absolute http(s) URL with a host; the worker's SSRF guard decides later whether it may be reached."""

WebhookEvent = Literal["started", "progress", "completed"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    executionTimeout: JsonInt | None = Field(default=None, ge=1000, le=7 * 86_400_000, description="Milliseconds.")  # noqa: N815
    ttl: JsonInt | None = Field(default=None, ge=10_000, le=7 * 86_400_000, description="Milliseconds.")
    lowPriority: bool | None = None  # noqa: N815


class RunRequest(JobBody):
    """`POST /run` and `/runsync`. Runpod-only keys this service does not use (s3Config...) are ignored."""

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
