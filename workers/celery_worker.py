"""Worker entry point: `celery -A workers.celery_worker worker -P prefork -c 8 -Q tts` (one worker per GPU).

A synthesis worker's parent starts one engine process (workers/engine_host/: a fresh interpreter, never a fork,
the only process that loads the model and touches CUDA) and waits until it has loaded and warmed up its model;
then the prefork pool starts. Its children (WORKER_CONCURRENCY) claim jobs, chunk the text, send every chunk to the
engine, which decodes the chunks of all of them together, and post-process, encode, upload and report. Prefork
keeps what solo and threads lose: soft and hard time limits, a child that died replaced and its job requeued at
once. An engine that cannot load stops the worker with a non-zero exit; one that dies later is restarted (its jobs
run again), up to ENGINE_MAX_RESTARTS times.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import Any

from celery import Task
from celery.exceptions import Retry
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
from workers.engine_host.client import EngineLost
from workers.engine_host.supervisor import EngineStartFailed, EngineSupervisor
from workers.job_updates import JobUpdates
from workers.webhooks import WebhookMessage, WebhookNotifier

log = logging.getLogger(__name__)

settings = get_settings()
app = create_celery_app(settings)
ENGINE_RETRY_DELAY_S = 1.0
"""How long a job whose engine process was lost waits before it runs again (the engine restarts meanwhile)."""

_parent_pid: int | None = None
_engine: EngineSupervisor | None = None
"""The parent's engine process; None for a worker that only serves the service queue."""
# Shared memory inherited by the pool children. Celery's shutdown exits 0, so the parent reads this flag to exit
# with a failure code instead when the engine (or a child's start) failed.
_failed = multiprocessing.Value("b", 0)


@worker_init.connect
def _start_engine(sender: Any, **_: Any) -> None:
    global _parent_pid, _engine
    configure_logging(settings.log_level)
    _parent_pid = os.getpid()
    if settings.tts_queue not in sender.app.amqp.queues.consume_from:
        return
    _engine = EngineSupervisor(settings, on_give_up=_stop_worker)
    try:
        _engine.start()
    except EngineStartFailed as error:
        log.critical("could not load the %s engine; this worker takes no jobs: %s", settings.tts_engine, error)
        _engine.stop()
        raise SystemExit(EX_FAILURE) from error


def _stop_worker() -> None:
    """Shut this worker down with a failure code (the engine process cannot be kept running)."""
    _failed.value = 1
    if _parent_pid is not None:
        os.kill(_parent_pid, signal.SIGTERM)


@worker_shutdown.connect
def _exit_code(sender: Any, **_: Any) -> None:
    if _engine is not None and os.getpid() == _parent_pid:
        _engine.stop()
    if _failed.value:
        sender.exitcode = EX_FAILURE


@worker_process_init.connect
def _start_child(**_: Any) -> None:
    configure_logging(settings.log_level)
    try:
        runtime.start(settings, app, engine=_engine.client() if _engine is not None else None)
    except Exception:
        log.critical("this worker process could not start; the worker takes no jobs", exc_info=True)
        _stop_worker()
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
        updates = JobUpdates(sync_client(settings), settings)
        record: JobRecord | None = updates.get(self.id)
        if record is None:
            return
        if updates.finish(record, JobStatus.TIMED_OUT, error="The job ran past its execution time limit.").applied:
            WebhookNotifier(app, settings, updates).notify(record, "completed")


@app.task(name=names.SYNTHESIZE, bind=True, Request=SynthesisRequest, max_retries=None)
def synthesize(self: Task, job_id: str) -> str | None:
    serving = runtime.synthesis()
    serving.presence.set(WorkerState.BUSY)
    try:
        status = serving.runner.run(job_id)
    except EngineLost as lost:
        # The job stays IN_PROGRESS; its next attempt runs once the engine is back (counted against MAX_ATTEMPTS).
        retry: Retry = self.retry(countdown=ENGINE_RETRY_DELAY_S, exc=lost)
        raise retry from lost
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
