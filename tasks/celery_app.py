"""The Celery app, configured from the settings object, shared by the API (to publish) and the workers."""

from __future__ import annotations

from celery import Celery
from kombu.entity import Queue

from core.settings import Settings
from tasks import names


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("tts", broker=settings.redis_url, set_as_current=False)
    # Job state lives in our own records (tasks/jobs.py), never in a Celery result backend: nothing to leak or
    # subscribe to, and results are never pickled.
    transport_options = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        # A GPU job must survive the death of its worker: ack after the run, requeue when the child is lost.
        # tasks/jobs.py counts attempts so a job that kills its worker every time ends FAILED instead of looping.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Pool children: jobs in flight per worker (a ChatterBox engine batches their chunks together).
        worker_concurrency=settings.worker_concurrency,
        broker_transport_options=transport_options,
        result_backend_transport_options=transport_options,
        visibility_timeout=settings.visibility_timeout_s,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # Models load in worker_process_init; the parent must wait for that instead of killing the child after 4 s.
        worker_proc_alive_timeout=settings.model_load_timeout_s,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_queues=[Queue(settings.tts_queue), Queue(settings.service_queue)],
        task_default_queue=settings.service_queue,
        task_create_missing_queues=False,
        task_routes={
            names.SYNTHESIZE: {"queue": settings.tts_queue},
            names.DELIVER_WEBHOOK: {"queue": settings.service_queue},
        },
        worker_hijack_root_logger=False,
    )
    return app
