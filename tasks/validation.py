"""The checks a synthesis input passes beyond its schema, and the job it becomes: what the API answers at submit
and the Runpod worker reports as the job's error, word for word, for the same input. Raises APIError
(core/errors.py) naming the offending parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from core.errors import APIError
from core.settings import Settings
from tasks.inputs import INPUT_KINDS, CustomInput, JobBody, SpeechRequest
from tasks.languages import served_languages, speaks
from tasks.models import resolve_model, served_model
from tasks.spec import Sampling, SynthesisSpec
from tasks.text import has_speakable_text
from voices.errors import UnknownVoiceError, VoicePathError
from voices.registry import VoiceRegistry


def job_input(body: object) -> SpeechRequest | CustomInput:
    """A job body's `input` (`{"input": ...}`), validated as the API validates `/run`'s body."""
    try:
        return JobBody.model_validate(body).input
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from exc


def job_spec(request: SpeechRequest | CustomInput, settings: Settings, voices: VoiceRegistry) -> SynthesisSpec:
    """A job's input as the job it asks for; parameters are named as in the job body (`input.text`)."""
    if isinstance(request, SpeechRequest):
        return validate_speech(request, settings, voices, param_prefix="input.")
    return custom_spec(request, settings, voices)


def validate_speech(
    request: SpeechRequest, settings: Settings, voices: VoiceRegistry, *, param_prefix: str = ""
) -> SynthesisSpec:
    """The request as a job, or an APIError naming the offending parameter (after `param_prefix`: the job API
    nests the request under `input.`)."""
    check_text(request.input, settings, param=f"{param_prefix}input")
    model = resolve_model(request.model, settings)
    if model is None:
        raise APIError(
            400,
            f"Model '{request.model}' is not served here. Use {served_model(settings)} or tts-1, tts-1-hd, "
            "gpt-4o-mini-tts.",
            param=f"{param_prefix}model",
            code="model_not_found",
        )
    try:
        voice = voices.resolve(request.voice_name)
    except UnknownVoiceError as exc:
        raise APIError(400, str(exc), param=f"{param_prefix}voice", code="voice_not_found") from exc
    return SynthesisSpec(
        text=request.input,
        model=model,
        voice=request.voice_name,
        language=voice.language,
        normalize=settings.text_normalization,
        response_format=request.response_format,
        speed=request.speed,
        output_shape="openai",
    )


def custom_spec(custom: CustomInput, settings: Settings, voices: VoiceRegistry) -> SynthesisSpec:
    check_text(custom.text, settings, param="input.text")
    check_language(custom.language, settings, param="input.language")
    if custom.audio_prompt is not None:
        try:
            voices.resolve_prompt(custom.audio_prompt)
        except VoicePathError as exc:
            raise APIError(400, str(exc), param="input.audio_prompt") from exc
    sampling = Sampling(**custom.model_dump(include=set(Sampling.model_fields)))
    return SynthesisSpec(
        text=custom.text,
        model=served_model(settings),
        audio_prompt=custom.audio_prompt,
        language=custom.language,
        normalize=custom.normalize and settings.text_normalization,
        response_format=custom.response_format,
        sampling=sampling,
        output_shape="custom",
        stream_pcm=custom.stream,
    )


def check_language(language: str | None, settings: Settings, *, param: str) -> None:
    """A language the served engine speaks (judged by its primary subtag), or none."""
    languages = served_languages(settings)
    if language is not None and not speaks(languages, language):
        raise APIError(
            400,
            f"{served_model(settings)} does not speak {language!r}; it speaks {', '.join(sorted(languages))} "
            "(a region may follow, as in pt-BR).",
            param=param,
            code="unsupported_language",
        )


def check_text(text: str, settings: Settings, *, param: str) -> None:
    """Within the length limit and with something to speak; the chunker turns control characters into spaces."""
    if len(text) > settings.max_input_chars:
        raise APIError(
            400,
            f"The text is {len(text)} characters; the maximum is {settings.max_input_chars}.",
            param=param,
            code="string_above_max_length",
        )
    if not has_speakable_text(text):
        message = "There is no text to speak: it needs at least one letter or digit."
        raise APIError(400, message, param=param, code="no_text")


NESTED_REQUEST_FIELD = "input"
"""The job API's `input` holds a whole request: errors inside it name the field inside it (`input.text`)."""


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> APIError:
    """The 400 for a request that failed validation, naming the field in `param`: the top-level one, or the one
    inside the job API's `input`."""
    first = errors[0]
    kind = first.get("type")
    if kind == "json_invalid":
        # Its location holds the character offset of the syntax error, not a parameter.
        return APIError(400, "The request body is not valid JSON.")
    location = _field_path(first)
    if not location:
        return APIError(400, "The request body is not valid JSON for this endpoint.")
    depth = 2 if location[0] == NESTED_REQUEST_FIELD and len(location) > 1 else 1
    param = ".".join(location[:depth])
    if kind == "extra_forbidden":
        return APIError(400, f"Unrecognized request argument supplied: {'.'.join(location)}", param=param)
    same_field = [error for error in errors if _field_path(error)[:depth] == location[:depth]]
    if len(same_field) > 1:
        # A union (a voice name or {"id": ...}): each accepted form reports why it did not match.
        detail = "; or ".join(dict.fromkeys(str(error.get("msg")) for error in same_field))
        return APIError(400, f"Invalid value for '{param}': {detail}", param=param, code="invalid_value")
    return APIError(
        400, f"Invalid value for '{'.'.join(location)}': {first.get('msg')}", param=param, code="invalid_value"
    )


def _field_path(error: Mapping[str, Any]) -> list[str]:
    # The job input's union tags sit in the location too; they name a request shape, not a field.
    parts = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    if parts[:1] == [NESTED_REQUEST_FIELD] and parts[1:2] and parts[1] in INPUT_KINDS:
        del parts[1]
    return parts
