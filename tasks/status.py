"""The job's status body: what `/status/{id}` returns and what a webhook receiver gets, built in one place;
and the webhook delivery task's arguments, built from it by whoever ends (or starts) the job."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tasks.jobs import JobRecord, JobStatus

WEBHOOK_EVENTS_FIELD = "webhook_events"
WEBHOOK_STATE_FIELD = "webhook_state"
WEBHOOK_ATTEMPTS_FIELD = "webhook_attempts"
DEFAULT_WEBHOOK_EVENTS = ("completed",)


def webhook_events(record: JobRecord) -> tuple[str, ...]:
    raw = record.extra.get(WEBHOOK_EVENTS_FIELD)
    return tuple(json.loads(raw)) if raw else DEFAULT_WEBHOOK_EVENTS


def status_body(record: JobRecord, *, with_webhook: bool = True) -> dict[str, Any]:
    output = record.output
    if record.status == JobStatus.IN_PROGRESS and record.chunks_total:
        output = {"progress": f"{record.chunks_done}/{record.chunks_total}"}
    body: dict[str, Any] = {
        "id": record.id,
        "status": record.status.value,
        "delayTime": record.delay_ms,
        "executionTime": record.execution_ms,
        "retries": max(0, record.attempts - 1),
    }
    if output is not None:
        body["output"] = output
    if record.error:
        body["error"] = record.error
    if with_webhook and record.webhook:
        body["webhook"] = {
            "events": list(webhook_events(record)),
            "state": record.extra.get(WEBHOOK_STATE_FIELD, "pending"),
            "attempts": json.loads(record.extra.get(WEBHOOK_ATTEMPTS_FIELD, "[]")),
        }
    return body


def webhook_task_args(record: JobRecord, event: str) -> list[str] | None:
    """Arguments for the delivery task, or None when this job's caller did not ask for this event.

    The message id and body are fixed here, once, so every retry sends the same bytes under the same id.
    """
    if not record.webhook or event not in webhook_events(record):
        return None
    if record.extra.get(WEBHOOK_STATE_FIELD) == "disabled":
        return None
    body = json.dumps(status_body(record, with_webhook=False), separators=(",", ":"))
    return [record.id, event, f"msg_{uuid.uuid4().hex}", record.webhook, body]
