"""What a job costs in Redis: the keys of a queued job, and a streaming job's event stream at the service's bounds.

Jobs are submitted the API's way (JobClient, the admission script) and audio is published the worker's way
(JobUpdates, the publish script), with the settings' bounds; `MEMORY USAGE ... SAMPLES 0` measures each key exactly
and `used_memory` the whole. infra/README.md's sizing uses these figures.

Run: `REDIS_URL=redis://127.0.0.1:6379/8 python -m bench.redis_memory` (an empty database: it is flushed).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import redis

from core.redis_clients import async_client, sync_client
from core.settings import Settings
from tasks.celery_app import create_celery_app
from tasks.client import JobClient
from tasks.jobs import QUEUED_SET, events_key, record_key
from tasks.spec import SynthesisSpec
from workers.job_updates import CallerNotReading, JobUpdates

QUEUED_JOBS = 1000
PIECE_SECONDS = 0.5
"""The worker publishes about half a second of encoded audio at a time."""
PIECE_BYTES = {
    "opus (32 kbps)": int(32_000 / 8 * PIECE_SECONDS),
    "mp3 (64 kbps)": int(64_000 / 8 * PIECE_SECONDS),
    "pcm (24 kHz, 16-bit)": int(24_000 * 2 * PIECE_SECONDS),
}


def memory(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def submit(settings: Settings, specs: list[SynthesisSpec], **options: Any) -> list[str]:
    client = async_client(settings)
    try:
        jobs = JobClient(settings, client, create_celery_app(settings))
        return [(await jobs.submit(spec, max_queue_depth=len(specs) + 1, **options)).id for spec in specs]
    finally:
        await client.aclose()


def queued_jobs(settings: Settings, client: redis.Redis, text: str, label: str) -> None:
    client.flushdb()
    before = used_memory(client)
    spec = SynthesisSpec(text=text, model="chatterbox-turbo", voice="alloy")
    ids = asyncio.run(submit(settings, [spec] * QUEUED_JOBS, retention_s=settings.job_ttl_s))
    total = (used_memory(client) - before) / QUEUED_JOBS
    record = sum(memory(client, record_key(job_id)) for job_id in ids) / QUEUED_JOBS
    events = sum(memory(client, events_key(job_id)) for job_id in ids) / QUEUED_JOBS
    message = memory(client, settings.tts_queue) / QUEUED_JOBS
    queued = memory(client, QUEUED_SET) / QUEUED_JOBS
    print(
        f"queued job, {label}: {total / 1024:.1f} KiB in all (used_memory over {QUEUED_JOBS} jobs): record "
        f"{record:.0f} B, event stream {events:.0f} B, task message {message:.0f} B, queued-set entry {queued:.0f} B"
    )


def streaming_job(settings: Settings, client: redis.Redis, label: str, piece_bytes: int) -> None:
    """A speech job whose caller reads nothing: the worker publishes until the bound stops it."""
    client.flushdb()
    spec = SynthesisSpec(text="Hello.", model="chatterbox-turbo", voice="alloy", publish_audio=True, store_output=False)
    (job_id,) = asyncio.run(submit(settings, [spec], retention_s=settings.sync_job_ttl_s))
    updates = JobUpdates(client, settings.model_copy(update={"audio_stream_stall_s": 0.05}))
    record = updates.begin_attempt(job_id)
    assert record is not None
    piece = b"\x55" * piece_bytes
    published = 0
    try:
        while published * piece_bytes < 4 * settings.audio_stream_max_bytes:
            updates.publish_audio(job_id, record.attempts, piece)
            published += 1
    except CallerNotReading:
        pass
    entries = int(client.xlen(events_key(job_id)))
    size = memory(client, events_key(job_id))
    print(
        f"streaming job, {label} pieces of {piece_bytes} B: {published} published before the bound, {entries} "
        f"entries kept (AUDIO_STREAM_MAXLEN {settings.audio_stream_maxlen}), stream {size / 2**20:.2f} MiB "
        f"(AUDIO_STREAM_MAX_BYTES {settings.audio_stream_max_bytes / 2**20:g} MiB)"
    )


def main() -> None:
    settings = Settings()
    client = sync_client(settings)
    if client.dbsize():
        sys.exit(f"{settings.redis_url} is not empty; this benchmark flushes it: name an empty database")
    try:
        print(f"Redis {client.info('server')['redis_version']} at {settings.redis_url}")
        queued_jobs(settings, client, "Hello from the queue, a short sentence of forty.", "48-character text")
        queued_jobs(settings, client, ("All work and no play. " * 200)[: settings.max_input_chars], "longest text")
        for label, piece_bytes in PIECE_BYTES.items():
            streaming_job(settings, client, label, piece_bytes)
    finally:
        client.flushdb()
        client.close()


if __name__ == "__main__":
    main()
