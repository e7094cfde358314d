"""Builds the engine the settings name. Nothing here imports torch; ChatterBox loads it in `load()`."""

from __future__ import annotations

from typing import assert_never

from core.settings import Settings
from workers.engines.base import Engine


def create_engine(settings: Settings) -> Engine:
    """The configured engine, not yet loaded."""
    match settings.tts_engine:
        case "espeak":
            from workers.engines.espeak import EspeakEngine

            return EspeakEngine(settings)
        case "chatterbox":
            from workers.engines.chatterbox import ChatterboxEngine

            return ChatterboxEngine(settings)
        case unreachable:
            assert_never(unreachable)
