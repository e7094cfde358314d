"""The OpenAPI document, made to tell the truth about this deployment: clients generate code from it.

FastAPI builds it from the routes and models; what it cannot know is added here (FastAPI's documented way to
extend it is to replace `app.openapi`):

- no 422 anywhere (validation errors are 400s, in the error shape the routes declare);
- what the edge middleware answers on every route it guards: 401 with the bearer scheme when API_KEYS is set, 413
  where a body is accepted, and 401/403 for voice writes when ADMIN_API_KEYS is set;
- the limits that come from settings: the longest input, the model names and the languages this engine speaks;
- what the voice registry holds now: the voices `voice` accepts and the clips `audio_prompt` accepts. This part is
  read on every request for the document, so a voice added a moment ago is in it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import ERROR_DESCRIPTIONS
from api.middleware import OPEN_PATH_PREFIXES
from core.settings import Settings
from tasks.languages import language_pattern, served_languages
from tasks.models import model_pattern

Document = dict[str, Any]
VOICE_WRITES = {("post", "/v1/audio/voices"), ("patch", "/v1/audio/voices/{name}")} | {
    ("delete", "/v1/audio/voices/{name}"),
    ("put", "/v1/audio/voices/{name}"),
}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI, settings: Settings, choices: Callable[[], tuple[list[str], list[str]]]) -> None:
    """Serve the document built here; `choices` gives the voices and audio prompts accepted right now."""
    static: Document | None = None

    def openapi() -> Document:
        nonlocal static
        if static is None:
            generated = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            static = _with_settings(generated, settings)
        document = copy.deepcopy(static)
        _with_registry(document, *choices())
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _with_settings(document: Document, settings: Settings) -> Document:
    components = document.setdefault("components", {})
    schemas = components.get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if settings.api_keys or settings.admin_api_keys:
        components["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "One of API_KEYS (a bare key works too)."},
            "adminKey": {"type": "http", "scheme": "bearer", "description": "One of ADMIN_API_KEYS."},
        }
    unauthorized = _error_response(401)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            responses.pop("422", None)
            if "requestBody" in operation:
                responses.setdefault("413", _error_response(413))
            if settings.admin_api_keys and (method, path) in VOICE_WRITES:
                operation["security"] = [{"adminKey": []}]
                responses.update({"401": unauthorized, "403": _error_response(403)})
            elif settings.api_keys and not path.startswith(OPEN_PATH_PREFIXES):
                operation["security"] = [{"apiKey": []}]
                responses["401"] = unauthorized
    speech, custom = schemas["SpeechRequest"]["properties"], schemas["CustomInput"]["properties"]
    speech["input"]["maxLength"] = custom["text"]["maxLength"] = settings.max_input_chars
    speech["model"]["pattern"] = model_pattern(settings)
    upload = document["paths"]["/v1/audio/voices"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    upload_form = schemas[upload["$ref"].rsplit("/", 1)[1]]["properties"]
    for language in (custom["language"], schemas["VoiceUpdate"]["properties"]["language"], upload_form["language"]):
        _spoken_here(language, settings)
    return document


def _spoken_here(language: Document, settings: Settings) -> None:
    """A language field: well formed (its own pattern), and a language the served engine speaks."""
    languages = served_languages(settings)
    tag = next(branch for branch in language["anyOf"] if branch.get("type") == "string")
    tag["allOf"] = [{"pattern": language_pattern(languages)}]
    language["description"] = f"One of {', '.join(sorted(languages))}; a region or variant may follow (pt-BR)."


def _with_registry(document: Document, voices: list[str], prompts: list[str]) -> None:
    schemas = document["components"]["schemas"]
    named = _one_of(voices)
    schemas["SpeechRequest"]["properties"]["voice"]["anyOf"] = [
        named,
        {"type": "object", "properties": {"id": named}, "required": ["id"], "additionalProperties": False},
    ]
    schemas.pop("VoiceId", None)
    schemas["CustomInput"]["properties"]["audio_prompt"]["anyOf"] = [_one_of(prompts), {"type": "null"}]


def _one_of(values: list[str]) -> Document:
    # An empty enum is not valid JSON Schema; `not {}` is the schema nothing matches.
    return {"type": "string", "enum": values} if values else {"not": {}}


def _error_response(status: int) -> Document:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
