"""bench.checkpoint's Turbo stop held off (`--min-tokens`): what makes the benchmarks' chunk lengths nearly steady,
checked on the library's own decoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from chatterbox.models.t3 import T3
from chatterbox.tts_turbo import Conditionals, punc_norm
from safetensors.torch import load_file
from transformers import AutoTokenizer

from bench.checkpoint import CALIBRATION_TEXT, calibrate_turbo_stop, turbo_t3_config
from tests.conftest import Checkpoints

MIN_TOKENS = 8
STOP_PROBABILITY = 0.25
"""Once free, the stop comes after 3 more tokens on average: more than 40 has a chance of 1 in 100,000."""
TAIL_BOUND = 40


@pytest.fixture(scope="module")
def turbo(checkpoints: Checkpoints) -> tuple[Any, Any, Callable[[str], torch.Tensor]]:
    """The test checkpoint's T3 (loaded as ChatterboxTurboTTS.from_local does), its built-in voice and a tokenizer."""
    torch.set_num_threads(2)
    directory = checkpoints("turbo")
    t3 = T3(turbo_t3_config())
    t3.load_state_dict(load_file(directory / "t3_turbo_v1.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(directory)

    def tokens(text: str) -> torch.Tensor:
        ids: torch.Tensor = tokenizer(punc_norm(text), return_tensors="pt").input_ids
        return ids

    return t3.eval(), Conditionals.load(directory / "conds.pt").t3, tokens


def prompt_length(t3: Any, cond: Any, text_tokens: torch.Tensor) -> int:
    start = t3.hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(t3_cond=cond, text_tokens=text_tokens, speech_tokens=start)
    return int(embeds.shape[1])


def test_a_held_off_stop_comes_once_the_speech_reaches_its_position_and_soon_after(
    turbo: tuple[Any, Any, Callable[[str], torch.Tensor]],
) -> None:
    t3, cond, tokens = turbo
    with torch.inference_mode():
        calibration = calibrate_turbo_stop(t3, cond, tokens(CALIBRATION_TEXT), STOP_PROBABILITY, MIN_TOKENS)
        for text in (CALIBRATION_TEXT, "Hi."):
            text_tokens = tokens(text)
            # The hold is by absolute position: a shorter text speaks longer before the stop may come.
            held = int(calibration["first_free_position"]) - (prompt_length(t3, cond, text_tokens) - 1)
            assert held >= MIN_TOKENS
            spoken = t3.inference_turbo(cond, text_tokens).shape[1]
            assert held <= spoken <= held + TAIL_BOUND, (text, held, spoken)
