"""The multilingual ChatterBox for real, on a random-weight checkpoint (bench/checkpoint.py): it loads offline,
with the checkpoint's own Chinese segmenter, speaks one request at a time through the library's own `generate`, and
each 0.1.7 workaround is shown needed by the real code and working on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Checkpoints
from tests.support.chatterbox import loaded_engine
from workers.engines.base import ChunkRequest, EngineError, GenerationParams, synthesize_one
from workers.engines.chatterbox import ChatterboxEngine

TEXT = "The original model speaks this sentence."


@pytest.fixture(scope="module")
def multilingual(checkpoints: Checkpoints) -> Iterator[ChatterboxEngine]:
    yield from loaded_engine(checkpoints, "multilingual", chatterbox_language="en")


def test_multilingual_loads_offline_and_speaks_leaving_no_hooks(multilingual: ChatterboxEngine) -> None:
    layers = multilingual.model.t3.tfmr.layers
    audio = synthesize_one(multilingual, "Ceci est une phrase en français.", params=GenerationParams(language="fr"))
    assert len(audio) > 0.1 * multilingual.sample_rate
    # 0.1.7's alignment analyser registers hooks on every generate; left there, speech collapses on CPU.
    assert all(not layer.self_attn._forward_hooks for layer in layers)


def test_multilingual_explains_text_too_short_for_it(multilingual: ChatterboxEngine) -> None:
    with pytest.raises(EngineError, match="cannot speak text this short"):
        synthesize_one(multilingual, "A.", params=GenerationParams(language="en"))


def test_multilingual_refuses_a_language_it_does_not_speak(multilingual: ChatterboxEngine) -> None:
    with pytest.raises(EngineError, match="does not speak 'xx'"):
        multilingual.submit(ChunkRequest("xx", TEXT, None, GenerationParams(language="xx")))
