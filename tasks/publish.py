"""Celery task messages, built as Celery builds them, for an LPUSH onto the queue's list (what kombu's Redis
transport does): inside the admission script (one round trip: record and message together), from asyncio (Celery's
`send_task` is synchronous I/O) and from the workers alike, so every task message is made one way.

The protocol-2 message comes from Celery's own `app.amqp.as_task_v2`; the envelope around it is kombu's Redis
transport's. tests/test_publish.py checks the whole against one made by `send_task` itself, on every test run, so a
kombu release that changes it fails there.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from celery import Celery

from core.settings import Settings
from tasks import names
from tasks.jobs import JobRecord
from tasks.status import webhook_task_args


def task_envelope(
    app: Celery,
    name: str,
    task_id: str,
    args: list[Any],
    queue: str,
    *,
    soft_time_limit: float | None = None,
    time_limit: float | None = None,
) -> dict[str, Any]:
    message = app.amqp.as_task_v2(
        task_id,
        name,
        args=args,
        kwargs={},
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
        ignore_result=None,  # what send_task sends: the task's own setting decides
    )
    body = json.dumps(message.body).encode()
    properties = dict(message.properties)
    properties.update(
        delivery_mode=2,
        delivery_info={"exchange": "", "routing_key": queue},
        priority=0,
        body_encoding="base64",
        delivery_tag=str(uuid.uuid4()),
    )
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": message.headers,
        "properties": properties,
    }


def webhook_envelope(app: Celery, settings: Settings, record: JobRecord, event: str) -> tuple[str, str] | None:
    """The webhook delivery task for this job's event, as (queue, message) to LPUSH; None when the job's caller
    did not ask for this event. The API and the workers both publish webhooks this way."""
    args = webhook_task_args(record, event)
    if args is None:
        return None
    envelope = task_envelope(app, names.DELIVER_WEBHOOK, str(uuid.uuid4()), list(args), settings.service_queue)
    return settings.service_queue, json.dumps(envelope)
