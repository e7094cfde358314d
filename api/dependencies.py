"""The services a request handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request

from api.services.files import LocalFiles
from api.services.jobs import JobService
from api.services.speech import SpeechService
from api.services.voices import VoiceService
from core.settings import Settings
from tasks.client import JobClient


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    job_client: JobClient
    voices: VoiceService
    speech: SpeechService
    jobs: JobService
    local_files: LocalFiles | None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
