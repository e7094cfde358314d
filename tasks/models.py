"""Public model names: what clients may put in `model`, and which engine serves it."""

from __future__ import annotations

from core.settings import Settings

CHATTERBOX_MODELS = {
    "turbo": "chatterbox-turbo",
    "standard": "chatterbox",
    "multilingual": "chatterbox-multilingual",
}
ESPEAK_MODEL = "espeak"

OPENAI_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""OpenAI's names (and their dated variants, e.g. gpt-4o-mini-tts-2025-12-15) map to the served model."""


def served_model(settings: Settings) -> str:
    """The model the configured workers load."""
    if settings.tts_engine == "espeak":
        return ESPEAK_MODEL
    return CHATTERBOX_MODELS[settings.chatterbox_variant]


def resolve_model(requested: str, settings: Settings) -> str | None:
    """The served model a request's `model` selects, or None when this deployment does not serve it."""
    served = served_model(settings)
    if requested == served:
        return served
    if any(requested == alias or requested.startswith(f"{alias}-") for alias in OPENAI_ALIASES):
        return served
    return None
