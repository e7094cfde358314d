"""Serves the local object store's files behind signed, expiring URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from api.dependencies import Services, get_services
from api.errors import APIError
from core.storage import LOCAL_FILES_ROUTE, StorageError, local_signing_key, verify_local_url
from tasks.spec import CONTENT_TYPES, FILE_EXTENSIONS

router = APIRouter(tags=["files"])
MEDIA_TYPES = {extension: CONTENT_TYPES[fmt] for fmt, extension in FILE_EXTENSIONS.items()}


@router.get(LOCAL_FILES_ROUTE + "/{key:path}", response_class=FileResponse)
async def get_file(
    key: str, expires: int, signature: str, services: Annotated[Services, Depends(get_services)]
) -> FileResponse:
    store = services.local_store
    if store is None or not verify_local_url(local_signing_key(services.settings), key, expires, signature):
        raise APIError(404, "File not found or link expired.")
    try:
        path = store.path_for(key)
    except StorageError as exc:
        raise APIError(404, "File not found or link expired.") from exc
    if not path.is_file():
        raise APIError(404, "File not found or link expired.")
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lstrip("."), "application/octet-stream"))
