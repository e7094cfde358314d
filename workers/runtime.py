"""Everything a pool child holds for its lifetime, built once per process after the fork.

`start()` runs in each pool child (worker_process_init). A worker that consumes the synthesis queue has an engine
process (started by the parent, workers/engine_host/); its children connect to it before accepting a job, and never
load a model themselves. One that only consumes the service queue (webhooks) has no engine at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import redis
from celery import Celery

from core.redis_clients import sync_client
from core.settings import Settings
from core.storage import create_object_store
from tasks.secrets import url_signing_key
from voices.registry import VoiceRegistry
from workers.engine_host.client import EngineClient
from workers.job_runner import JobRunner
from workers.job_updates import JobUpdates
from workers.pipeline import SynthesisPipeline
from workers.presence import WorkerPresence
from workers.webhooks import WebhookNotifier, WebhookSender

log = logging.getLogger(__name__)


@dataclass
class Synthesis:
    engine: EngineClient
    runner: JobRunner
    presence: WorkerPresence


@dataclass
class WorkerRuntime:
    webhook_sender: WebhookSender
    synthesis: Synthesis | None


_current: WorkerRuntime | None = None


def start(settings: Settings, app: Celery, *, engine: EngineClient | None) -> WorkerRuntime:
    """`engine`: a client of this worker's engine process, when the worker serves the synthesis queue."""
    global _current
    client = sync_client(settings)
    _current = WorkerRuntime(
        webhook_sender=WebhookSender(settings, client),
        synthesis=_start_synthesis(settings, app, client, engine) if engine is not None else None,
    )
    return _current


def _start_synthesis(settings: Settings, app: Celery, client: redis.Redis, engine: EngineClient) -> Synthesis:
    """Connect to the engine process (waiting while it loads) and build the job runner around it."""
    started = time.perf_counter()
    info = engine.connect()
    log.info(
        "engine %s on %s ready for this process after %.2f s", info.name, info.device, time.perf_counter() - started
    )
    updates = JobUpdates(client, settings)
    runner = JobRunner(
        settings=settings,
        pipeline=SynthesisPipeline(engine, settings),
        voices=VoiceRegistry.from_settings(settings),
        updates=updates,
        store=create_object_store(settings, partial(url_signing_key, settings, client)),
        webhooks=WebhookNotifier(app, settings, updates),
    )
    presence = WorkerPresence(client)
    presence.start()
    return Synthesis(engine=engine, runner=runner, presence=presence)


def current() -> WorkerRuntime:
    if _current is None:
        raise RuntimeError("worker runtime not started: it is built in worker_process_init")
    return _current


def synthesis() -> Synthesis:
    serving = current().synthesis
    if serving is None:
        raise RuntimeError("this worker does not consume the synthesis queue, so it has no engine")
    return serving


def stop() -> None:
    if _current is not None and _current.synthesis is not None:
        _current.synthesis.presence.stop()
        _current.synthesis.engine.close()
