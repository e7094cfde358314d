"""T3's projections for a batch of rows through oneDNN's packed matrix kernels, on a CPU.

Every decode step multiplies a few rows (one per decoding chunk) by each of GPT-2's weight matrices. torch's CPU
`addmm`, which GPT-2's `Conv1D` calls, goes to MKL's sgemm, which is tuned for one row or for many and not for a
handful: measured on this project's CPU (AMD EPYC, AVX2, 2 threads; `python -m bench.projections`) a step's 96
projections took 172 ms for 8 rows against 74 ms for one. oneDNN, with each weight reordered once into its blocked
layout, takes 90 ms for the same 8 rows and as long as MKL for one.

torch reaches that kernel only through the ops its compiler (inductor) emits for frozen CPU linear layers,
`torch.ops.mkldnn._reorder_linear_weight` and `torch.ops.mkldnn._linear_pointwise`; its public `MkldnnLinear`
converts every input to oneDNN's own tensor type and measured no faster than MKL here.

The batched decoder is a copy of T3's transformer that shares every parameter with it except the projections'
weights, held once more in oneDNN's layout (1.2 GB for Turbo's GPT-2 medium). The library's own model is left as
it is: a chunk decoding alone still runs through it, with MKL, exactly as `generate` does.
"""

from __future__ import annotations

import copy
import itertools

import torch
from transformers.pytorch_utils import Conv1D


class PackedConv1D(torch.nn.Module):
    """GPT-2's `Conv1D` (x @ weight + bias, its weight stored inputs by outputs) with its weight in oneDNN's layout."""

    def __init__(self, conv: Conv1D, rows: int) -> None:
        super().__init__()
        self.out_features: int = conv.nf
        self.bias = conv.bias
        with torch.no_grad():
            # `rows`: the batch size oneDNN picks its blocking for; any number of rows still works.
            self.packed = torch.ops.mkldnn._reorder_linear_weight(conv.weight.detach().t().contiguous(), rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        return out.view(*x.shape[:-1], self.out_features)


def packs_projections(device: torch.device) -> bool:
    """Whether batched projections go through oneDNN: on a CPU whose torch was built with it (on a GPU, cuBLAS
    already serves a few rows well)."""
    return device.type == "cpu" and bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]


def batched_decoder(transformer: torch.nn.Module, rows: int) -> torch.nn.Module:
    """A copy of `transformer` sharing its parameters and buffers, with every `Conv1D` running packed for `rows`."""
    shared = {id(tensor): tensor for tensor in itertools.chain(transformer.parameters(), transformer.buffers())}
    decoder = copy.deepcopy(transformer, shared)
    for module in list(decoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                setattr(module, name, PackedConv1D(child, rows))
    return decoder
