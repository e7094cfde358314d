"""Public model names: what clients may put in `model`, and which engine serves it."""

from __future__ import annotations

import re

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


def model_pattern(settings: Settings) -> str:
    """The names `model` accepts, as one regular expression (ECMA-262 syntax that Python reads the same way): the
    served model, or an OpenAI name with or without a suffix after a `-`. The OpenAPI document publishes it."""
    # Model names are letters, digits and hyphens: nothing to escape (and `\-` is an error in Unicode ECMA-262).
    return rf"^(?:{served_model(settings)}|(?:{'|'.join(OPENAI_ALIASES)})(?:-[\s\S]*)?)$"


def resolve_model(requested: str, settings: Settings) -> str | None:
    """The served model a request's `model` selects, or None when this deployment does not serve it."""
    return served_model(settings) if re.fullmatch(model_pattern(settings), requested) else None
