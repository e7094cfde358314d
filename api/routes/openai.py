"""OpenAI-compatible routes: speech, models, voices."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from api.dependencies import Services, get_services
from api.errors import error_responses
from api.schemas.openai import Model, ModelList, SpeechPreview, Voice, VoiceList, VoiceUpdate
from core.errors import APIError
from core.language import LANGUAGE_TAG_MAX_LENGTH, LANGUAGE_TAG_PATTERN
from tasks.inputs import SpeechRequest
from tasks.models import OPENAI_ALIASES, served_model
from voices.registry import VOICE_NAME_PATTERN

router = APIRouter(prefix="/v1", tags=["openai"])

ServicesDep = Annotated[Services, Depends(get_services)]
STARTED_AT = int(time.time())

SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": 'JSON: {"type": "speech.audio.delta", "audio": base64}, then {"type": "speech.audio.done", '
            '"usage": {...}} and `[DONE]`; or {"type": "error", "error": {...}} when synthesis ends early.',
        },
        "event": {"type": "string"},
    },
}
AUDIO_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Audio in the requested format, streamed as it is made; or SSE events for stream_format=sse.",
        "content": {
            **{ct: {"schema": {"type": "string", "format": "binary"}} for ct in (
                "audio/mpeg", "audio/opus", "audio/aac", "audio/flac", "audio/wav", "audio/pcm"
            )},
            # Before OpenAPI 3.2 `schema` describes one event of the stream.
            "text/event-stream": {"schema": SSE_EVENT},
        },
    }
}  # fmt: skip


@router.post(
    "/audio/speech",
    response_class=StreamingResponse,
    responses={**AUDIO_RESPONSES, **error_responses(400, 409, 429, 500, 503, 504)},
)
async def create_speech(body: SpeechRequest, request: Request, services: ServicesDep) -> StreamingResponse:
    speech = await services.speech.start(body, partial(_disconnected, request))
    headers = {"X-Job-Id": speech.job_id, "X-Sample-Rate": str(services.settings.output_sample_rate)}
    if body.stream_format == "sse":
        return StreamingResponse(
            speech.sse(), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-store"}
        )
    return StreamingResponse(speech.audio(), media_type=speech.content_type, headers=headers)


@router.post("/audio/speech/preview", responses=error_responses(400))
async def preview_speech(body: SpeechRequest, services: ServicesDep) -> SpeechPreview:
    """The chunks `/v1/audio/speech` would give the engine for this request; nothing is synthesized."""
    return services.speech.preview(body)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.get("/models")
async def list_models(services: ServicesDep) -> ModelList:
    served = served_model(services.settings)
    names = [served, *OPENAI_ALIASES]
    return ModelList(data=[Model(id=name, created=STARTED_AT, owned_by="chatterbox-tts-service") for name in names])


@router.get("/models/{model_id}", responses=error_responses(404))
async def get_model(model_id: str, services: ServicesDep) -> Model:
    models = await list_models(services)
    for model in models.data:
        if model.id == model_id:
            return model
    raise APIError(404, f"Model '{model_id}' is not served here.", param="model", code="model_not_found")


@router.get("/audio/voices")
async def list_voices(services: ServicesDep) -> VoiceList:
    return await services.voices.list_all()


async def _voice_writer(request: Request, services: ServicesDep) -> None:
    services.voices.check_writer(request.headers.get("authorization", "").encode() or None)


VoiceWriter = Depends(_voice_writer)


@router.post("/audio/voices", status_code=201, dependencies=[VoiceWriter], responses=error_responses(400, 409, 413))
async def upload_voice(
    services: ServicesDep,
    name: Annotated[
        str, Form(description="Voice name, e.g. 'narrator'.", json_schema_extra={"pattern": VOICE_NAME_PATTERN})
    ],
    file: Annotated[UploadFile, File(description="Reference clip (wav, mp3, flac, ogg...).")],
    description: Annotated[str | None, Form()] = None,
    language: Annotated[
        str | None, Form(pattern=LANGUAGE_TAG_PATTERN, max_length=LANGUAGE_TAG_MAX_LENGTH, description="e.g. fr")
    ] = None,
) -> Voice:
    limit = services.settings.max_voice_upload_bytes
    audio = await file.read(limit + 1)
    if len(audio) > limit:
        raise APIError(413, f"The clip is over the {limit} byte limit.", param="file", code="file_too_large")
    return await services.voices.add(name, audio, file.filename, description, language)


@router.patch("/audio/voices/{name}", dependencies=[VoiceWriter], responses=error_responses(400, 404))
async def update_voice(name: str, body: VoiceUpdate, services: ServicesDep) -> Voice:
    return await services.voices.update(name, body)


@router.delete("/audio/voices/{name}", dependencies=[VoiceWriter], responses=error_responses(404))
async def delete_voice(name: str, services: ServicesDep) -> dict[str, object]:
    await services.voices.delete(name)
    return {"id": name, "object": "voice", "deleted": True}


@router.put("/audio/voices/{name}", dependencies=[VoiceWriter], responses=error_responses(400, 404, 409))
async def restore_voice(name: str, services: ServicesDep, body: VoiceUpdate | None = None) -> Voice:
    """Put a built-in voice back, deleted or changed: its own clip, and the description and enabled flag given
    (as it ships where not given). Other voices are uploaded with POST /v1/audio/voices."""
    return await services.voices.restore(name, body or VoiceUpdate())
