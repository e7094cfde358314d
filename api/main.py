"""The FastAPI app: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.auth import KeyRing
from api.dependencies import Services
from api.errors import install_error_handlers
from api.middleware import EdgeMiddleware
from api.openapi import install_openapi
from api.routes import files, jobs, openai
from api.routes import metrics as metrics_route
from api.services.admission import Admission
from api.services.files import LocalFiles
from api.services.jobs import JobService
from api.services.metrics import Metrics
from api.services.speech import SpeechService
from api.services.voices import VoiceService
from core.logs import configure_logging
from core.redis_clients import async_client
from core.settings import Settings, get_settings
from tasks.celery_app import create_celery_app
from tasks.client import JobClient
from tasks.models import served_model
from voices.registry import VoiceRegistry

log = logging.getLogger(__name__)

VOICE_UPLOAD_PATH = "/v1/audio/voices"
PLAYGROUND_PATH = "/playground"
PLAYGROUND_DIR = Path(__file__).parent / "playground"
"""The playground page: plain HTML, CSS and JavaScript modules, served as they are (no build step)."""


def build_services(settings: Settings, client: aioredis.Redis) -> Services:
    job_client = JobClient(settings, client, create_celery_app(settings))
    voices = VoiceRegistry.from_settings(settings)
    admission = Admission(settings, job_client)
    return Services(
        settings=settings,
        redis=client,
        job_client=job_client,
        voices=VoiceService(settings, voices, KeyRing(settings.admin_api_keys)),
        speech=SpeechService(settings, job_client, voices, admission),
        jobs=JobService(settings, job_client, voices, admission),
        local_files=LocalFiles(settings, client) if settings.storage_backend == "local" else None,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = async_client(settings, max_connections=512)
        app.state.services = services = build_services(settings, client)
        if not settings.api_keys:
            log.warning("no API_KEYS configured: the API is open to anyone who can reach it")
        log.info("serving model %s; queue %s on %s", served_model(settings), settings.tts_queue, settings.redis_url)
        async with anyio.create_task_group() as background:
            if services.local_files is not None:
                background.start_soon(services.local_files.keep_within_retention)
            yield
            background.cancel_scope.cancel()
        await client.aclose()

    app = FastAPI(
        title="ChatterBox TTS service",
        version="0.1.0",
        description="OpenAI-compatible speech and a Runpod-compatible job API over a Celery queue.",
        lifespan=lifespan,
    )
    install_openapi(app, settings, lambda: app.state.services.voices.choices())
    app.state.metrics = metrics = Metrics()
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(jobs.runpod_router)
    app.include_router(jobs.plain_router)
    app.include_router(files.router)
    app.include_router(metrics_route.router)
    app.mount(PLAYGROUND_PATH, StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")
    app.add_middleware(
        EdgeMiddleware,
        # An admin key is an accepted key too; with no API_KEYS, the API stays open.
        keys=KeyRing([*settings.api_keys, *settings.admin_api_keys] if settings.api_keys else []),
        max_body_bytes=settings.max_body_bytes,
        upload_paths=[VOICE_UPLOAD_PATH],
        max_upload_bytes=settings.max_voice_upload_bytes + 64 * 1024,
        count_request=metrics.count_request,
    )
    return app
