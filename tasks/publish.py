"""Publishing Celery tasks from asyncio without blocking the event loop.

Celery's `send_task` is synchronous I/O. This builds the exact protocol-2 message Celery builds (with
`app.amqp.as_task_v2`) and pushes it the way kombu's Redis transport does (LPUSH onto the queue's list), on
redis.asyncio. tests/test_publish.py checks the envelope against one made by `send_task` itself.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import redis.asyncio as aioredis
from celery import Celery


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


class TaskPublisher:
    def __init__(self, app: Celery, client: aioredis.Redis) -> None:
        self._app = app
        self._redis = client

    async def publish(self, name: str, task_id: str, args: list[Any], queue: str, **time_limits: float | None) -> None:
        """Push the task; `time_limits` are task_envelope's `soft_time_limit` and `time_limit`."""
        envelope = task_envelope(self._app, name, task_id, args, queue, **time_limits)
        await self._redis.lpush(queue, json.dumps(envelope))
