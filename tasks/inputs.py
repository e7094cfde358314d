"""What a synthesis request asks for, as both APIs take it: OpenAI's speech request and the job API's `input`
(that request or the original custom one). Shared by the API and the Runpod worker, which validate the same
inputs the same way; tasks/validation.py checks what a schema cannot and turns them into a SynthesisSpec."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from core.language import LanguageTag
from tasks.spec import AudioFormat
from tasks.text import SPEAKABLE_PATTERN


def _integral_float_to_int(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 2089.0 included; strict pydantic wants an int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]
"""An integer as JSON Schema has it: 5 or 5.0, never "5" or true."""


Speed = Annotated[float, Field(ge=0.25, le=4.0)]
StreamFormat = Literal["audio", "sse"]


class VoiceId(BaseModel):
    """A custom voice selected by id (a name in the voice registry)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str


class SpeechRequest(BaseModel):
    """`POST /v1/audio/speech`: unknown keys are rejected, as OpenAI does."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(description="tts-1, tts-1-hd, gpt-4o-mini-tts (mapped to the served model) or a served model.")
    input: str = Field(
        min_length=1,
        description="The text to speak, with at least one letter or digit; at most MAX_INPUT_CHARS (4096) characters.",
        json_schema_extra={"pattern": SPEAKABLE_PATTERN},
    )
    voice: str | VoiceId = Field(description="A voice name from /v1/audio/voices, or {'id': name}.")
    instructions: str | None = Field(default=None, max_length=4096, description="Accepted; ignored by engines.")
    response_format: AudioFormat = "mp3"
    speed: Speed = 1.0
    stream_format: StreamFormat = "audio"

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceId) else self.voice


class CustomInput(BaseModel):
    """The original custom request, kept backward compatible: unknown keys are ignored as before. An input with
    `model` and `voice` and no `audio_prompt` is an OpenAI request instead, which the schema says with `not`."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={"not": {"required": ["model", "voice"], "not": {"required": ["audio_prompt"]}}},
    )

    text: str = Field(min_length=1, json_schema_extra={"pattern": SPEAKABLE_PATTERN})
    audio_prompt: str | None = None
    temperature: float = Field(default=0.8, gt=0, le=5)
    top_k: JsonInt = Field(default=1000, ge=1)
    top_p: float = Field(default=0.95, gt=0, le=1)
    repetition_penalty: float = Field(default=1.2, ge=1, le=10)
    min_p: float = Field(default=0.0, ge=0, le=1)
    exaggeration: float = Field(default=0.0, ge=0, le=2)
    cfg_weight: float = Field(default=0.0, ge=0, le=1)
    norm_loudness: bool = True
    language: LanguageTag | None = None
    normalize: bool = Field(
        default=True, description="Spell out numbers, symbols and abbreviations (English; TEXT_NORMALIZATION)."
    )
    response_format: AudioFormat = Field(default="opus", description="Opus in Ogg (`.ogg`), as the seed returned.")
    stream: bool = Field(
        default=False,
        description="Also stream the audio as it is made: `/stream/{id}` gives pieces of base64 16-bit PCM "
        "(`audio_base64`, `sample_rate`, `encoding`), then the final output.",
    )


OPENAI_INPUT = "openai"
CUSTOM_INPUT = "custom"
INPUT_KINDS = frozenset({OPENAI_INPUT, CUSTOM_INPUT})
"""The tags of the input union, which appear in validation errors' locations but are not parameters."""


def input_kind(value: object) -> str | None:
    """The seed's detection: `model` and `voice` present and `audio_prompt` absent means an OpenAI request."""
    if isinstance(value, SpeechRequest):
        return OPENAI_INPUT
    if isinstance(value, CustomInput):
        return CUSTOM_INPUT
    if isinstance(value, dict):
        return OPENAI_INPUT if "model" in value and "voice" in value and "audio_prompt" not in value else CUSTOM_INPUT
    return None


JobInput = Annotated[
    Annotated[SpeechRequest, Tag(OPENAI_INPUT)] | Annotated[CustomInput, Tag(CUSTOM_INPUT)],
    Discriminator(
        input_kind,
        custom_error_type="job_input",
        custom_error_message="Input should be an object: an OpenAI speech request or the custom request",
    ),
]


class JobBody(BaseModel):
    """A job's body as far as its synthesis goes: the `input`. The API's `/run` body adds webhook and policy; a
    Runpod job brings its own. Validating this, rather than the input alone, gives errors the API's locations
    (`input.text`)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    input: JobInput
