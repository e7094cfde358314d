"""Serves the local object store's files behind signed, expiring URLs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from api.dependencies import Services, get_services
from api.errors import error_responses
from core.errors import APIError
from core.storage import LOCAL_FILES_ROUTE
from tasks.spec import CONTENT_TYPES, FILE_EXTENSIONS

router = APIRouter(tags=["files"])
MEDIA_TYPES = {extension: CONTENT_TYPES[fmt] for fmt, extension in FILE_EXTENSIONS.items()}


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The audio file.",
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()},
    },
    **error_responses(404),
}


@router.get(LOCAL_FILES_ROUTE + "/{key:path}", response_class=FileResponse, responses=FILE_RESPONSES)
async def get_file(
    key: str,
    services: Annotated[Services, Depends(get_services)],
    expires: Annotated[str | None, Query(description="Part of the signed link.")] = None,
    signature: Annotated[str | None, Query(description="Part of the signed link.")] = None,
) -> FileResponse:
    files = services.local_files
    path = await files.find(key, expires, signature) if files is not None else None
    if path is None:
        # Malformed, forged, expired or deleted: one answer, which tells a prober nothing.
        raise APIError(404, "File not found or link expired.")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lstrip("."), "application/octet-stream"))
