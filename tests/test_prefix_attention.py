"""A decode step's attention with each voice's conditioning read once: the same as transformers' SDPA attention over
each row's own copy of it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import GPT2Config, GPT2Model
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

from workers.engines.kv_slots import CachedPrefix
from workers.engines.prefix_attention import SHARED_PREFIX_ATTENTION, SharedPrefix, shared_prefix_attention

HEADS, HEAD_DIM, POSITIONS = 4, 16, 40
LAYER = 1


def small_config() -> GPT2Config:
    return GPT2Config(n_embd=HEADS * HEAD_DIM, n_head=HEADS, n_layer=2)  # type: ignore[no-untyped-call]


def attention_module() -> GPT2Attention:
    module: GPT2Attention = GPT2Attention(small_config(), layer_idx=LAYER).eval()  # type: ignore[no-untyped-call]
    return module


def prefix(length: int, generator: torch.Generator) -> CachedPrefix:
    """A prefix as the cache keeps it: (heads, positions, dim) per layer; only layer LAYER is read here."""
    layers = [torch.randn(HEADS, length, HEAD_DIM, generator=generator) for _ in range(2 * (LAYER + 1))]
    return CachedPrefix(layers[: LAYER + 1], layers[LAYER + 1 :])


@pytest.mark.parametrize("scaling", [None, 0.1])
def test_rows_of_two_voices_attend_as_over_their_own_copies(scaling: float | None) -> None:
    generator = torch.Generator().manual_seed(0)
    module = attention_module()
    voice_a, voice_b = prefix(12, generator), prefix(9, generator)
    rows = [voice_a, voice_a, voice_b, voice_a, voice_b]  # voice A's rows are not all consecutive
    lengths = [30, 17, 39, 12, 25]  # positions each row attends to, its new one included
    query = torch.randn(len(rows), HEADS, 1, HEAD_DIM, generator=generator)
    key = torch.randn(len(rows), HEADS, POSITIONS, HEAD_DIM, generator=generator)
    value = torch.randn(len(rows), HEADS, POSITIONS, HEAD_DIM, generator=generator)
    for row, voice in enumerate(rows):
        length = voice.keys[LAYER].shape[1]
        key[row, :, :length] = voice.keys[LAYER]
        value[row, :, :length] = voice.values[LAYER]
    mask = (torch.arange(POSITIONS)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]
    groups = [SharedPrefix(torch.tensor([0, 1, 3]), voice_a), SharedPrefix(slice(2, 5, 2), voice_b)]

    ours, _ = shared_prefix_attention(module, query, key, value, mask, shared_prefixes=groups, scaling=scaling)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=scaling)

    assert ours.shape == theirs.shape == (len(rows), 1, HEADS, HEAD_DIM)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_the_rows_past_their_prefix_matter_and_masked_positions_do_not() -> None:
    generator = torch.Generator().manual_seed(1)
    module = attention_module()
    voice = prefix(10, generator)
    query = torch.randn(2, HEADS, 1, HEAD_DIM, generator=generator)
    key = torch.randn(2, HEADS, POSITIONS, HEAD_DIM, generator=generator)
    value = torch.randn(2, HEADS, POSITIONS, HEAD_DIM, generator=generator)
    mask = (torch.arange(POSITIONS)[None, :] < torch.tensor([20, 20])[:, None])[:, None, None, :]
    groups = [SharedPrefix(slice(0, 2), voice)]
    before, _ = shared_prefix_attention(module, query, key, value, mask, shared_prefixes=groups)

    masked_changed = value.clone()
    masked_changed[:, :, 25:] = 100.0
    after_masked, _ = shared_prefix_attention(module, query, key, masked_changed, mask, shared_prefixes=groups)
    own_changed = value.clone()
    own_changed[0, :, 15] = 100.0
    after_own, _ = shared_prefix_attention(module, query, key, own_changed, mask, shared_prefixes=groups)

    torch.testing.assert_close(after_masked, before)
    assert not torch.allclose(after_own[0], before[0])
    torch.testing.assert_close(after_own[1], before[1])


def test_a_prompt_or_a_step_without_groups_is_transformers_own_attention() -> None:
    generator = torch.Generator().manual_seed(2)
    module = attention_module()
    query = torch.randn(1, HEADS, 6, HEAD_DIM, generator=generator)
    key = torch.randn(1, HEADS, 6, HEAD_DIM, generator=generator)
    value = torch.randn(1, HEADS, 6, HEAD_DIM, generator=generator)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()[None, None]
    ours, _ = shared_prefix_attention(module, query, key, value, causal)
    theirs, _ = sdpa_attention_forward(module, query, key, value, causal)
    torch.testing.assert_close(ours, theirs)


def test_a_model_set_to_it_passes_the_groups_down_to_every_layer() -> None:
    from workers.engines.prefix_attention import use_shared_prefix_attention

    torch.manual_seed(3)
    model: GPT2Model = GPT2Model(small_config()).eval()  # type: ignore[no-untyped-call]
    use_shared_prefix_attention(model)
    assert model.config._attn_implementation == SHARED_PREFIX_ATTENTION
    seen: list[object] = []

    def spy(
        module: Any, query: Any, key: Any, value: Any, mask: Any, shared_prefixes: Any = None, **kwargs: Any
    ) -> Any:
        seen.append(shared_prefixes)
        return shared_prefix_attention(module, query, key, value, mask, **kwargs)

    from transformers import AttentionInterface

    AttentionInterface.register(SHARED_PREFIX_ATTENTION, spy)
    try:
        with torch.inference_mode():
            model(inputs_embeds=torch.randn(1, 3, HEADS * HEAD_DIM), shared_prefixes="the groups")
    finally:
        AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    assert seen == ["the groups", "the groups"]
