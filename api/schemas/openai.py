"""OpenAI's audio response models and the voice routes' models, fields in the documented order. The speech
request itself is shared with the Runpod worker: tasks/inputs.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.language import LanguageTag


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
