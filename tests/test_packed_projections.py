"""T3's batched decoder on a CPU: GPT-2's projections through oneDNN's packed kernels, on a small GPT-2 of
transformers' own (Turbo's T3 is GPT-2 medium; the real model's batched rows are checked against the library in
test_engine_chatterbox.py)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2Model
from transformers.pytorch_utils import Conv1D

from workers.engines.packed_projections import PackedConv1D, batched_decoder, packs_projections


@pytest.fixture(scope="module")
def transformer() -> GPT2Model:
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=50)  # type: ignore[no-untyped-call]
    model: GPT2Model = GPT2Model(config).eval()  # type: ignore[no-untyped-call]
    return model


def conv_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [module for module in model.modules() if isinstance(module, Conv1D | PackedConv1D)]


def test_only_a_cpu_with_onednn_packs() -> None:
    assert packs_projections(torch.device("cpu")) == torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    assert not packs_projections(torch.device("cuda"))
    assert not packs_projections(torch.device("mps"))


def test_a_packed_projection_computes_what_conv1d_does() -> None:
    torch.manual_seed(1)
    conv = Conv1D(96, 32)  # type: ignore[no-untyped-call]
    packed = PackedConv1D(conv, rows=8)
    for rows in (1, 3, 8, 17):
        x = torch.randn(rows, 1, 32)
        with torch.inference_mode():
            torch.testing.assert_close(packed(x), conv(x), rtol=1e-5, atol=1e-5)
            assert packed(x).shape == (rows, 1, 96)


def test_the_batched_decoder_gives_the_transformers_hidden_states(transformer: GPT2Model) -> None:
    decoder = batched_decoder(transformer, rows=4)
    embeds = torch.randn(4, 5, 64)
    with torch.inference_mode():
        expected = transformer(inputs_embeds=embeds).last_hidden_state
        got = decoder(inputs_embeds=embeds).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_the_batched_decoder_shares_the_models_weights_and_leaves_the_model_alone(transformer: GPT2Model) -> None:
    decoder = batched_decoder(transformer, rows=4)
    assert all(isinstance(layer, PackedConv1D) for layer in conv_layers(decoder))
    assert len(conv_layers(decoder)) == 4 * transformer.config.n_layer
    assert all(isinstance(layer, Conv1D) for layer in conv_layers(transformer)), "the library's model is unchanged"
    ours = {name: tensor.data_ptr() for name, tensor in decoder.named_parameters()}
    theirs = {name: tensor.data_ptr() for name, tensor in transformer.named_parameters()}
    kept = {name: pointer for name, pointer in theirs.items() if name in ours}
    assert kept and kept == {name: ours[name] for name in kept}, "every parameter left in the copy is shared"
    assert {name for name in theirs if name not in ours} == {
        name for name in theirs if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
    }, "only the projections' weights are held anew (packed)"
