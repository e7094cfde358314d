"""Everything a worker process holds for its lifetime, built once per process after the fork.

CUDA does not survive fork, so nothing here is built in a prefork parent: `start()` runs in each pool child
(worker_process_init) and loads the engine before the child accepts its first job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from core.settings import Settings
from core.storage import create_object_store
from voices.registry import VoiceRegistry
from workers.engines.base import Engine, GenerationParams
from workers.engines.factory import create_engine
from workers.job_runner import JobRunner
from workers.job_updates import JobUpdates
from workers.pipeline import SynthesisPipeline
from workers.presence import WorkerPresence

log = logging.getLogger(__name__)

WARM_UP_TEXT = "Ready."


@dataclass
class WorkerRuntime:
    engine: Engine
    runner: JobRunner
    presence: WorkerPresence


_current: WorkerRuntime | None = None


def start(settings: Settings) -> WorkerRuntime:
    """Load the engine, warm it up with one sentence and build the job runner around it."""
    global _current
    started = time.perf_counter()
    engine = create_engine(settings)
    engine.load()
    pipeline = SynthesisPipeline(engine, settings)
    engine.synthesize(WARM_UP_TEXT, None, GenerationParams())
    log.info(
        "engine %s loaded on %s and warmed up in %.2f s",
        engine.name,
        engine.device,
        time.perf_counter() - started,
    )
    client = redis.Redis.from_url(settings.redis_url)
    updates = JobUpdates(client, stream_maxlen=settings.audio_stream_maxlen)
    runner = JobRunner(
        settings=settings,
        pipeline=pipeline,
        voices=VoiceRegistry.from_settings(settings),
        updates=updates,
        store=create_object_store(settings),
    )
    presence = WorkerPresence(client)
    presence.start()
    _current = WorkerRuntime(engine=engine, runner=runner, presence=presence)
    return _current


def current() -> WorkerRuntime:
    if _current is None:
        raise RuntimeError("worker runtime not started: the engine loads in worker_process_init")
    return _current


def stop() -> None:
    if _current is not None:
        _current.presence.stop()
        _current.engine.unload()
