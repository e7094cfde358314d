"""The engine interface every text-to-speech engine implements.

Engines are synchronous, hold their model for the life of the process and are never called from an event loop.
One call synthesizes one chunk of text (the chunker keeps chunks short); joining, tempo and encoding happen
outside the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tasks.spec import Sampling

Audio = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""


class GenerationParams(Sampling):
    """What one engine call receives: the custom API's sampling parameters (with its defaults) and a language."""

    language: str | None = None


class EngineError(Exception):
    """A request the engine cannot serve (bad reference clip, unsupported language...).

    The message is shown to the caller, so it says what to change.
    """


class Engine(Protocol):
    name: str
    """Model name clients select, e.g. `chatterbox-turbo` or `espeak`."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def device(self) -> str: ...

    def load(self) -> None:
        """Load weights and warm up. Called once per process, never in a prefork parent."""

    def synthesize(self, text: str, reference_audio: Path | None, params: GenerationParams) -> Audio:
        """Speak one chunk of text in the voice of `reference_audio` (None: the engine's built-in voice)."""

    def unload(self) -> None:
        """Release the model (and its accelerator memory)."""
