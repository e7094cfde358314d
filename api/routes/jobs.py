"""The Runpod-compatible job API, mounted at `/` and at `/v2/{endpoint_id}/` (the runpod SDK's layout)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.dependencies import Services, get_services
from api.schemas.openai import SpeechPreview
from api.schemas.runpod import Health, JobAccepted, JobState, JobStream, PurgeResult, RunRequest

ServicesDep = Annotated[Services, Depends(get_services)]
WaitMs = Annotated[int | None, Query(ge=1000, le=300_000, description="How long to wait, in milliseconds.")]


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/run")
    async def run(body: RunRequest, services: ServicesDep) -> JobAccepted:
        return await services.jobs.run(body)

    @router.post("/preview")
    async def preview(body: RunRequest, services: ServicesDep) -> SpeechPreview:
        """The chunks the engine would receive for this job's input; nothing is queued."""
        return services.jobs.preview(body)

    @router.post("/runsync", response_model_exclude_none=True)
    async def run_sync(body: RunRequest, services: ServicesDep, wait: WaitMs = None) -> JobState:
        return await services.jobs.run_sync(body, wait or services.settings.runsync_default_wait_ms)

    @router.api_route("/status/{job_id}", methods=["GET", "POST"], response_model_exclude_none=True)
    async def status(job_id: str, services: ServicesDep) -> JobState:
        return await services.jobs.status(job_id)

    @router.post("/cancel/{job_id}")
    async def cancel(job_id: str, services: ServicesDep) -> JobAccepted:
        return await services.jobs.cancel(job_id)

    @router.post("/retry/{job_id}")
    async def retry(job_id: str, services: ServicesDep) -> JobAccepted:
        return await services.jobs.retry(job_id)

    @router.api_route("/stream/{job_id}", methods=["GET", "POST"])
    async def stream(job_id: str, services: ServicesDep) -> JobStream:
        return await services.jobs.stream(job_id)

    @router.post("/purge-queue")
    async def purge_queue(services: ServicesDep) -> PurgeResult:
        return await services.jobs.purge_queue()

    @router.get("/health")
    async def health(services: ServicesDep) -> Health:
        return await services.jobs.health()

    return router


plain_router = APIRouter(tags=["jobs"])
plain_router.include_router(build_router())
runpod_router = APIRouter(prefix="/v2/{endpoint_id}", tags=["jobs (runpod layout)"])
runpod_router.include_router(build_router())
