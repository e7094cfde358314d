"""OpenAI's audio request and response models, fields in the documented order."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.language import LanguageTag
from tasks.spec import AudioFormat
from tasks.text import SPEAKABLE_PATTERN

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


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class Voice(BaseModel):
    name: str
    description: str | None
    enabled: bool
    has_reference_audio: bool
    language: str | None = Field(description="The language the voice speaks; null: the served engine's own.")
    builtin: bool = Field(description="A built-in voice: deleted or changed, PUT /v1/audio/voices/{name} puts it back.")


class VoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Voice]


class VoiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    description: str | None = None
    enabled: bool | None = None
    language: LanguageTag | None = None


class SpeechPreview(BaseModel):
    """The text exactly as the engine will receive it, chunk by chunk, for debugging pronunciation."""

    object: Literal["speech.preview"] = "speech.preview"
    model: str
    voice: str | None = Field(description="The registry voice, or the custom request's audio_prompt.")
    language: str = Field(description="The language the text is spoken (and normalised) in.")
    normalized: bool = Field(description="Whether numbers, symbols and abbreviations were spelled out.")
    chunks: list[str] = Field(description="What each engine call receives, in order.")


class SpeechUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
