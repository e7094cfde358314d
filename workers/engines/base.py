"""The engine interface every text-to-speech engine implements.

Engines are synchronous, hold their model for the life of the process and are never called from an event loop.
One call synthesizes one chunk of text (the chunker keeps chunks short); joining, tempo and encoding happen
outside the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of the custom API (CONTRACTS.md section 2), with its defaults."""

    temperature: float = 0.8
    top_k: int = 1000
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    min_p: float = 0.0
    exaggeration: float = 0.0
    cfg_weight: float = 0.0
    norm_loudness: bool = True
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
