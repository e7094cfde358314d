"""From a job to the chunks its engine receives: which language the text is read in, and when it is normalised."""

# Settings.model_construct: the field defaults and these values, without reading this machine's environment.

from typing import Any

import pytest

from core.settings import Settings
from tasks.spec import SynthesisSpec
from text.front import engine_chunks, is_normalized, spoken_language

TEXT = "Dr. Smith paid $3.50 on 12/01/2026."


def spec(**fields: object) -> SynthesisSpec:
    return SynthesisSpec.model_validate({"text": TEXT, "model": "espeak", **fields})


@pytest.mark.parametrize(
    ("settings", "language"),
    [
        ({"tts_engine": "espeak"}, "en-us"),
        ({"tts_engine": "espeak", "espeak_voice": "fr"}, "fr"),
        ({"tts_engine": "chatterbox", "chatterbox_variant": "turbo", "chatterbox_language": "de"}, "en"),
        ({"tts_engine": "chatterbox", "chatterbox_variant": "multilingual", "chatterbox_language": "de"}, "de"),
    ],
)
def test_without_a_language_the_engine_s_own_is_used(settings: dict[str, Any], language: str) -> None:
    assert spoken_language(spec(), Settings.model_construct(**settings)) == language


def test_the_job_s_language_wins() -> None:
    assert spoken_language(spec(language="en-GB"), Settings.model_construct(espeak_voice="fr")) == "en-GB"


def test_chunks_are_normalised_for_english_only_and_only_when_asked() -> None:
    settings = Settings.model_construct()
    spoken = "Doctor Smith paid three dollars and fifty cents on December first, twenty twenty-six."
    assert engine_chunks(spec(), settings) == [spoken]
    assert engine_chunks(spec(language="en-GB"), settings) == [
        spoken.replace("December first, twenty twenty-six", "the twelfth of January twenty twenty-six")
    ]
    assert engine_chunks(spec(normalize=False), settings) == [TEXT]
    assert engine_chunks(spec(language="fr"), settings) == [TEXT]
    assert (is_normalized(spec(), settings), is_normalized(spec(language="fr"), settings)) == (True, False)
    assert is_normalized(spec(normalize=False), settings) is False


def test_chunks_respect_the_chunk_limit_after_normalising() -> None:
    settings = Settings.model_construct(max_chunk_chars=40)
    chunks = engine_chunks(spec(), settings)
    assert len(chunks) > 1 and all(len(chunk) <= 40 for chunk in chunks)
