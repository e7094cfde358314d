"""Serves the local object store's files behind signed, expiring URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from api.dependencies import Services, get_services
from api.errors import APIError
from core.storage import LOCAL_FILES_ROUTE
from tasks.spec import CONTENT_TYPES, FILE_EXTENSIONS

router = APIRouter(tags=["files"])
MEDIA_TYPES = {extension: CONTENT_TYPES[fmt] for fmt, extension in FILE_EXTENSIONS.items()}


@router.get(LOCAL_FILES_ROUTE + "/{key:path}", response_class=FileResponse)
async def get_file(
    key: str,
    services: Annotated[Services, Depends(get_services)],
    expires: str | None = None,
    signature: str | None = None,
) -> FileResponse:
    files = services.local_files
    path = await files.find(key, expires, signature) if files is not None else None
    if path is None:
        # Malformed, forged, expired or deleted: one answer, which tells a prober nothing.
        raise APIError(404, "File not found or link expired.")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lstrip("."), "application/octet-stream"))
