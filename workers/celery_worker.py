"""Worker entry point: `celery -A workers.celery_worker worker -P prefork -c 1 -Q tts`.

Pool choice: prefork with one child per GPU. The child loads the model in worker_process_init (the parent never
touches CUDA, which does not survive fork), and prefork keeps what solo and threads lose: soft and hard time
limits, replacing a child that died, and revoke-with-terminate. `worker_proc_alive_timeout` is raised to the model
load time so the parent waits for the load instead of killing the child after 4 s. A child that cannot load its
model asks the parent to shut down, and the worker exits non-zero and takes no jobs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import Any

from celery import Task
from celery.platforms import EX_FAILURE
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutdown
from celery.worker.request import Request

from core.logs import configure_logging
from core.redis_clients import sync_client
from core.settings import get_settings
from tasks import names
from tasks.celery_app import create_celery_app
from tasks.jobs import JobRecord, JobStatus
from tasks.presence import WorkerState
from workers import runtime
from workers.job_updates import JobUpdates
from workers.webhooks import WebhookMessage, WebhookNotifier

log = logging.getLogger(__name__)

settings = get_settings()
app = create_celery_app(settings)
_parent_pid: int | None = None
_serves_synthesis = False
# Shared memory inherited by the pool children: set by a child whose model failed to load. Celery's shutdown
# exits 0, so the parent reads this flag to exit with a failure code instead.
_load_failed = multiprocessing.Value("b", 0)


@worker_init.connect
def _remember_parent(sender: Any, **_: Any) -> None:
    global _parent_pid, _serves_synthesis
    configure_logging(settings.log_level)
    _parent_pid = os.getpid()
    _serves_synthesis = settings.tts_queue in sender.app.amqp.queues.consume_from


@worker_shutdown.connect
def _exit_code(sender: Any, **_: Any) -> None:
    if _load_failed.value:
        sender.exitcode = EX_FAILURE


@worker_process_init.connect
def _load_engine(**_: Any) -> None:
    configure_logging(settings.log_level)
    try:
        runtime.start(settings, app, synthesis=_serves_synthesis)
    except Exception:
        log.critical("could not load the %s engine; this worker takes no jobs", settings.tts_engine, exc_info=True)
        if _parent_pid is not None and _parent_pid != os.getpid():
            _load_failed.value = 1
            os.kill(_parent_pid, signal.SIGTERM)
        os._exit(1)


@worker_process_shutdown.connect
def _leave(**_: Any) -> None:
    runtime.stop()


class SynthesisRequest(Request):  # type: ignore[misc]
    """Records TIMED_OUT when the hard time limit kills the child (the task itself never learns of it)."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if soft:
            return  # the task catches SoftTimeLimitExceeded and records TIMED_OUT itself
        updates = JobUpdates(sync_client(settings), stream_maxlen=settings.audio_stream_maxlen)
        record: JobRecord | None = updates.get(self.id)
        if record is None:
            return
        if updates.finish(record, JobStatus.TIMED_OUT, error="The job ran past its execution time limit.").applied:
            WebhookNotifier(app, settings, updates).notify(record, "completed")


@app.task(name=names.SYNTHESIZE, Request=SynthesisRequest)
def synthesize(job_id: str) -> str | None:
    serving = runtime.synthesis()
    serving.presence.set(WorkerState.BUSY)
    try:
        status = serving.runner.run(job_id)
    finally:
        serving.presence.set(WorkerState.IDLE)
    return status.value if status else None


@app.task(name=names.DELIVER_WEBHOOK, bind=True, max_retries=None, acks_on_failure_or_timeout=True)
def deliver_webhook(self: Task, job_id: str, event: str, message_id: str, url: str, body: str) -> bool:
    message = WebhookMessage(job_id=job_id, event=event, message_id=message_id, url=url, body=body)
    outcome = runtime.current().webhook_sender.attempt(message, attempt=self.request.retries + 1)
    if outcome.retry_after_s is not None:
        raise self.retry(countdown=outcome.retry_after_s)
    return outcome.delivered
