"""The baseline for bench/queue.py: a bare Celery echo task on the same Redis, with a Redis result backend."""

from __future__ import annotations

import os

from celery import Celery

ECHO_REDIS_URL = os.environ.get("ECHO_REDIS_URL", "redis://127.0.0.1:6379/14")

app = Celery("echo", broker=ECHO_REDIS_URL, backend=ECHO_REDIS_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="echo")
def echo(value: int) -> int:
    return value
