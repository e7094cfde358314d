"""The Runpod-compatible job API, mounted at `/` and at `/v2/{endpoint_id}/` (the runpod SDK's layout)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.routing import APIRoute

from api.dependencies import Services, get_services
from api.errors import error_responses
from api.schemas.openai import SpeechPreview
from api.schemas.runpod import Health, JobAccepted, JobState, JobStream, PurgeResult, RunRequest

ServicesDep = Annotated[Services, Depends(get_services)]
WaitMs = Annotated[int | None, Query(ge=1000, le=300_000, description="How long to wait, in milliseconds.")]
EndpointId = Annotated[str, Path(description="Any string: this service is one endpoint.")]
SUBMIT_ERRORS = error_responses(400, 429, 503)
JOB_ERRORS = error_responses(404, 503)
CHANGE_ERRORS = error_responses(404, 409, 503)


def build_router(prefix: str) -> APIRouter:
    """The routes once per mount, one route per method so that every operation has an id of its own."""

    def operation_id(route: APIRoute) -> str:
        return f"{prefix}{route.name}_{'_'.join(sorted(route.methods or ())).lower()}"

    router = APIRouter(generate_unique_id_function=operation_id)
    # What a client does next with the id it got back (OpenAPI links; the v2 mount passes its endpoint on).
    passed_on = {"job_id": "$response.body#/id"} | ({"endpoint_id": "$request.path.endpoint_id"} if prefix else {})
    follow_ups = {
        name: {"operationId": f"{prefix}{name}_{method}", "parameters": passed_on}
        for name, method in (("status", "get"), ("stream", "get"), ("cancel", "post"), ("retry", "post"))
    }
    submitted = {200: {"description": "Accepted.", "links": follow_ups}, **SUBMIT_ERRORS}

    @router.post("/run", responses=submitted)
    async def run(body: RunRequest, services: ServicesDep) -> JobAccepted:
        return await services.jobs.run(body)

    @router.post("/preview", responses=error_responses(400))
    async def preview(body: RunRequest, services: ServicesDep) -> SpeechPreview:
        """The chunks the engine would receive for this job's input; nothing is queued."""
        return services.jobs.preview(body)

    @router.post("/runsync", responses=submitted, response_model_exclude_none=True)
    async def run_sync(body: RunRequest, services: ServicesDep, wait: WaitMs = None) -> JobState:
        return await services.jobs.run_sync(body, wait or services.settings.runsync_default_wait_ms)

    # Runpod's SDK uses both methods on these two.
    @router.get("/status/{job_id}", responses=JOB_ERRORS, response_model_exclude_none=True)
    @router.post("/status/{job_id}", responses=JOB_ERRORS, response_model_exclude_none=True)
    async def status(job_id: str, services: ServicesDep) -> JobState:
        return await services.jobs.status(job_id)

    @router.get("/stream/{job_id}", responses=JOB_ERRORS)
    @router.post("/stream/{job_id}", responses=JOB_ERRORS)
    async def stream(job_id: str, services: ServicesDep) -> JobStream:
        return await services.jobs.stream(job_id)

    @router.post("/cancel/{job_id}", responses=CHANGE_ERRORS)
    async def cancel(job_id: str, services: ServicesDep) -> JobAccepted:
        return await services.jobs.cancel(job_id)

    @router.post("/retry/{job_id}", responses=CHANGE_ERRORS)
    async def retry(job_id: str, services: ServicesDep) -> JobAccepted:
        return await services.jobs.retry(job_id)

    @router.post("/purge-queue", responses=error_responses(503))
    async def purge_queue(services: ServicesDep) -> PurgeResult:
        return await services.jobs.purge_queue()

    @router.get("/health", responses=error_responses(503))
    async def health(services: ServicesDep) -> Health:
        return await services.jobs.health()

    return router


async def _endpoint_id(endpoint_id: EndpointId) -> None:
    """Declares the mount's path parameter, which no route reads."""


plain_router = APIRouter(tags=["jobs"])
plain_router.include_router(build_router(""))
runpod_router = APIRouter(
    prefix="/v2/{endpoint_id}", tags=["jobs (runpod layout)"], dependencies=[Depends(_endpoint_id)]
)
runpod_router.include_router(build_router("runpod_"))
