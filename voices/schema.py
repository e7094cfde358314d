"""The voices.json file schema and the built-in default registry."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from core.language import LanguageTag
from voices.errors import VoicePathError
from voices.paths import check_store_relative_name


class VoiceRecord(BaseModel):
    """One entry of voices.json. Unknown keys are ignored so newer files stay readable."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    audio_file: str
    description: str | None = None
    enabled: bool = True
    language: LanguageTag | None = None
    """The language the voice speaks (`fr`): the OpenAI route, which has no language field, speaks it."""

    @field_validator("audio_file")
    @classmethod
    def _audio_file_stays_in_store(cls, value: str) -> str:
        try:
            check_store_relative_name(value)
        except VoicePathError as exc:
            raise ValueError(str(exc)) from exc
        return value


VoiceMapping = dict[str, VoiceRecord]

_MAPPING_ADAPTER = TypeAdapter(VoiceMapping)

_DEFAULT_DESCRIPTIONS = {
    "alloy": "Neutral and balanced",
    "ash": "Clear and precise",
    "ballad": "Melodic and smooth",
    "coral": "Warm and friendly",
    "echo": "Resonant and calm",
    "fable": "Expressive storyteller",
    "onyx": "Deep and authoritative",
    "nova": "Bright and energetic",
    "sage": "Calm and thoughtful",
    "shimmer": "Soft and gentle",
    "verse": "Versatile and expressive",
    "marin": "Natural and conversational",
    "cedar": "Grounded and steady",
}


BUILTIN_VOICES = tuple(_DEFAULT_DESCRIPTIONS)


def default_mapping() -> VoiceMapping:
    """The registry used while the store has no voices.json: OpenAI's thirteen voice names."""
    return {
        name: VoiceRecord(audio_file=f"voice_{name}.wav", description=description)
        for name, description in _DEFAULT_DESCRIPTIONS.items()
    }


def is_builtin(name: str, record: VoiceRecord) -> bool:
    """A built-in voice name still mapped to its own clip (an upload under a freed built-in name is not one)."""
    return name in _DEFAULT_DESCRIPTIONS and record.audio_file == f"voice_{name}.wav"


def parse_mapping(raw: bytes) -> VoiceMapping:
    """Parse and validate voices.json; raises pydantic's ValidationError on bad JSON or entries."""
    return _MAPPING_ADAPTER.validate_json(raw)


def serialize_mapping(mapping: VoiceMapping) -> bytes:
    document = {name: record.model_dump(exclude_none=True) for name, record in mapping.items()}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
