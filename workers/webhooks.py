"""Webhook callbacks: signed per Standard Webhooks, sent from the service queue, retried with backoff and jitter.

Only 2xx counts as delivered. 429, 5xx, timeouts and connection errors are retried (honouring Retry-After);
other statuses, redirects included (never followed), fail the delivery; 410 also disables the URL for the job.
Every attempt is recorded on the job and shown by `/status/{id}` under `webhook`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import redis
from celery import Celery
from standardwebhooks.webhooks import Webhook

from core.settings import Settings
from tasks.jobs import JobRecord, record_key
from tasks.publish import webhook_envelope
from tasks.status import WEBHOOK_ATTEMPTS_FIELD, WEBHOOK_STATE_FIELD, webhook_events
from workers.job_updates import JobUpdates
from workers.ssrf import AllowList, TargetRefused, check_target

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "chatterbox-tts-service-webhooks/1"


@dataclass(frozen=True)
class WebhookMessage:
    job_id: str
    event: str
    message_id: str
    url: str
    body: str


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry_after_s: float | None = None
    """Set when the attempt may be retried; None means final."""


class WebhookNotifier:
    """Enqueues a delivery when a job starts, progresses (throttled) or ends, if its caller asked for that event."""

    def __init__(self, app: Celery, settings: Settings, updates: JobUpdates) -> None:
        self._app = app
        self._settings = settings
        self._updates = updates
        self._last_progress: dict[str, float] = {}

    def notify(self, record: JobRecord, event: str) -> None:
        """`record` is the caller's copy, enough to tell whether anyone listens; the body is built from a fresh read."""
        if event == "completed":
            self._last_progress.pop(record.id, None)
        if not record.webhook or event not in webhook_events(record):
            return
        latest = self._updates.get(record.id)
        message = webhook_envelope(self._app, self._settings, latest, event) if latest else None
        if message is not None:
            self._updates.enqueue(*message)

    def progress(self, record: JobRecord) -> None:
        now = time.monotonic()
        if now - self._last_progress.get(record.id, 0.0) >= self._settings.webhook_progress_interval_s:
            self._last_progress[record.id] = now
            self.notify(record, "progress")


def signature_header(secrets: list[str], message_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<sig>` for every configured secret, space-separated, so receivers on an old or new secret verify."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets)


class WebhookSender:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self._settings = settings
        self._redis = client
        self._secrets = [secret.get_secret_value() for secret in settings.webhook_secret]
        self._allowed = AllowList.parse(settings.webhook_allowed_hosts)

    def attempt(self, message: WebhookMessage, attempt: int) -> Outcome:
        settings = self._settings
        if self._redis.hget(record_key(message.job_id), WEBHOOK_STATE_FIELD) == b"disabled":
            log.info("job %s: webhook disabled by an earlier 410; %s not sent", message.job_id, message.event)
            return Outcome(delivered=False)
        status_code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            target = check_target(message.url, self._allowed)
            status_code, retry_after = self._post(message, target.address)
        except TargetRefused as exc:
            error = f"refused: {exc}"
        except httpx.TimeoutException:
            error, retry_after = "timed out", 0.0
        except httpx.TransportError as exc:
            error, retry_after = f"connection failed: {type(exc).__name__}", 0.0
        delivered = status_code is not None and 200 <= status_code < 300
        if status_code is not None and not delivered and status_code not in RETRYABLE_STATUS:
            retry_after = None
        retrying = retry_after is not None and attempt < settings.webhook_max_attempts
        state = "delivered" if delivered else "disabled" if status_code == 410 else "pending" if retrying else "failed"
        self._record(message, status_code, error, state)
        log.info(
            "job %s: webhook %s attempt %d: %s",
            message.job_id,
            message.event,
            attempt,
            status_code if status_code is not None else error,
        )
        if not retrying:
            return Outcome(delivered=delivered)
        return Outcome(delivered=False, retry_after_s=self._backoff(attempt, retry_after or 0.0))

    def _post(self, message: WebhookMessage, address: str) -> tuple[int, float | None]:
        settings = self._settings
        url = httpx.URL(message.url)
        timestamp = datetime.now(tz=UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": url.netloc.decode(),
            "webhook-id": message.message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
        }
        if self._secrets:
            headers["webhook-signature"] = signature_header(self._secrets, message.message_id, timestamp, message.body)
        # Connect to the address that was checked, with the original Host header and TLS server name.
        pinned = url.copy_with(host=address)
        with (
            httpx.Client(follow_redirects=False, timeout=settings.webhook_timeout_s, trust_env=False) as client,
            client.stream(
                "POST",
                pinned,
                content=message.body.encode(),
                headers=headers,
                extensions={"sni_hostname": url.host},
            ) as response,
        ):
            received = 0
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > settings.webhook_max_response_bytes:
                    break
            return response.status_code, _retry_after(response)

    def _backoff(self, attempt: int, retry_after: float) -> float:
        cap = self._settings.webhook_backoff_max_s
        exponential = min(cap, self._settings.webhook_backoff_s * 2 ** (attempt - 1))
        jittered = random.uniform(exponential / 2, exponential)
        return min(cap, max(jittered, retry_after))

    def _record(self, message: WebhookMessage, status_code: int | None, error: str | None, state: str) -> None:
        entry = {"at": round(time.time(), 3), "event": message.event, "status_code": status_code, "error": error}
        key = record_key(message.job_id)

        def append(pipe: Any) -> None:
            if not pipe.exists(key):
                return  # the job record has expired; nothing to show the attempt on
            attempts = json.loads(pipe.hget(key, WEBHOOK_ATTEMPTS_FIELD) or "[]")
            previous = pipe.hget(key, WEBHOOK_STATE_FIELD)
            pipe.multi()
            pipe.hset(key, WEBHOOK_ATTEMPTS_FIELD, json.dumps([*attempts, entry]))
            if previous != b"disabled":
                pipe.hset(key, WEBHOOK_STATE_FIELD, state)

        self._redis.transaction(append, key)


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in RETRYABLE_STATUS:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return 0.0
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0
