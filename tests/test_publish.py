"""Our task messages must be exactly what Celery's own send_task puts on the queue (for the installed kombu)."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.settings import Settings
from tasks import names
from tasks.celery_app import create_celery_app
from tasks.publish import task_envelope
from tests.conftest import TEST_REDIS_URL

VARIABLE = {"delivery_tag", "reply_to"}


def _pop(client: redis.Redis, queue: str) -> Any:
    raw: Any = client.rpop(queue)
    assert raw is not None
    return json.loads(raw)


def test_envelope_matches_send_task(redis_client: redis.Redis) -> None:
    settings = Settings(redis_url=TEST_REDIS_URL)
    app = create_celery_app(settings)
    app.send_task(names.SYNTHESIZE, args=["job-1"], task_id="job-1", soft_time_limit=5, time_limit=10)
    theirs = _pop(redis_client, settings.tts_queue)

    envelope = task_envelope(
        app, names.SYNTHESIZE, "job-1", ["job-1"], settings.tts_queue, soft_time_limit=5, time_limit=10
    )
    ours = json.loads(json.dumps(envelope))

    assert ours["body"] == theirs["body"]
    assert {k: v for k, v in ours.items() if k not in ("headers", "properties")} == {
        k: v for k, v in theirs.items() if k not in ("headers", "properties")
    }
    assert ours["headers"] == theirs["headers"]
    assert {k: v for k, v in ours["properties"].items() if k not in VARIABLE} == {
        k: v for k, v in theirs["properties"].items() if k not in VARIABLE
    }
