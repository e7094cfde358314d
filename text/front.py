"""The text an engine receives for a job: normalised (where asked and where the language allows) and chunked.

The worker's pipeline and the API's preview route both call `engine_chunks`, so the preview shows exactly what the
engine will be given.
"""

from __future__ import annotations

from core.settings import Settings
from tasks.spec import SynthesisSpec
from text.chunker import split_into_chunks
from text.normalize import normalize, normalizes


def spoken_language(spec: SynthesisSpec, settings: Settings) -> str:
    """The language the served engine speaks the job in: the request's (or its voice's), else the engine's own."""
    if spec.language:
        return spec.language
    if settings.tts_engine == "espeak":
        return settings.espeak_voice
    if settings.chatterbox_variant == "multilingual":
        return settings.chatterbox_language
    return "en"


def is_normalized(spec: SynthesisSpec, settings: Settings) -> bool:
    return spec.normalize and normalizes(spoken_language(spec, settings))


def engine_chunks(spec: SynthesisSpec, settings: Settings) -> list[str]:
    text = normalize(spec.text, spoken_language(spec, settings)) if spec.normalize else spec.text
    return split_into_chunks(text, settings.max_chunk_chars)
