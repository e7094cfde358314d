"""`/metrics` for Prometheus (open like /docs; restrict it at the network edge)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.dependencies import Services, get_services
from api.services.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, services: Annotated[Services, Depends(get_services)]) -> Response:
    collector: Metrics = request.app.state.metrics
    body = await collector.render(services.job_client, services.redis)
    return Response(body, media_type=CONTENT_TYPE)
