"""The original English ChatterBox for real, on a random-weight checkpoint (bench/checkpoint.py): it speaks one
request at a time through the library's own `generate`, and each 0.1.7 workaround is shown needed by the real code
and working on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from tests.conftest import Checkpoints
from tests.support.chatterbox import loaded_engine
from workers.engines.base import ChunkRequest, EngineError, GenerationParams, synthesize_one
from workers.engines.chatterbox import SILENCE_SECONDS, ChatterboxEngine
from workers.engines.turbo_batch import STOP_SPEECH

TEXT = "The original model speaks this sentence."


@pytest.fixture(scope="module")
def standard(checkpoints: Checkpoints) -> Iterator[ChatterboxEngine]:
    yield from loaded_engine(checkpoints, "standard")


@contextmanager
def stops_at_once(engine: ChatterboxEngine) -> Iterator[None]:
    """The stop token's one weight reversed (bench/checkpoint.py's _LlamaStop), so T3 stops at its first step."""
    head = engine.model.t3.speech_head
    kept = head.weight.detach()[:, 0].clone()
    with torch.no_grad():
        head.weight[STOP_SPEECH, 0] = -abs(float(kept[STOP_SPEECH])) * 100
    try:
        yield
    finally:
        with torch.no_grad():
            head.weight[:, 0] = kept


def test_standard_speaks_with_no_guidance_where_the_library_crashes(standard: ChatterboxEngine) -> None:
    with pytest.raises(RuntimeError, match="must match"), torch.inference_mode():
        standard.model.generate("Hello.", cfg_weight=0.0)  # chatterbox PR #278
    audio = synthesize_one(standard, TEXT, params=GenerationParams(cfg_weight=0.0))
    assert len(audio) > 0.1 * standard.sample_rate and float(abs(audio).max()) > 0


def test_standard_that_speaks_no_token_gives_silence_where_the_library_crashes(standard: ChatterboxEngine) -> None:
    with stops_at_once(standard):
        with pytest.raises(RuntimeError, match="Kernel size can't be greater"), torch.inference_mode():
            standard.model.generate("Hello.")
        audio = synthesize_one(standard, TEXT)
    assert len(audio) == round(SILENCE_SECONDS * standard.sample_rate) and not audio.any()


def test_standard_refuses_another_language(standard: ChatterboxEngine) -> None:
    with pytest.raises(EngineError, match="English only"):
        standard.submit(ChunkRequest("fr", "Bonjour.", None, GenerationParams(language="fr")))
