"""T3's decode-step attention reading a voice's conditioning once per step, not once per row.

Every Turbo prompt starts with its voice's conditioning: 375 positions, the same keys and values for every chunk of
that voice (kv_slots.py copies them into each row's slot). In a decode step each row attends over its whole slot,
so with 8 rows of one voice the step reads those keys and values 8 times; that reading, not arithmetic, is what
attention costs on a CPU (one query per row): measured at 8 rows of about 490 positions, attention was 35 % of the
step. Here the rows sharing a prefix attend over the voice's one stored copy together (one matrix product for all
of them) and over their own positions after it apiece, with one softmax across both parts: the attention of
transformers' SDPA over the same keys and values, rounded differently.

It is registered with transformers' `AttentionInterface` and set on the batched decoder only (packed_projections.py's
copy of T3's transformer), which then takes the step's groups of rows as the keyword `shared_prefixes`; anything
else (a prompt, a step without groups) goes to transformers' own SDPA attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from workers.engines.kv_slots import CachedPrefix

SHARED_PREFIX_ATTENTION = "chatterbox_shared_prefix"


@dataclass(frozen=True)
class SharedPrefix:
    """Rows of a decode step whose first positions hold the same keys and values, kept once in `cached`."""

    rows: slice | torch.Tensor
    """The rows' places in the batch: a slice where they are consecutive, else their indices."""
    cached: CachedPrefix

    @property
    def length(self) -> int:
        return int(self.cached.keys[0].shape[1])


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    shared_prefixes: Sequence[SharedPrefix] | None = None,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """(batch, heads, 1, head dim) queries over (batch, heads, positions, head dim) keys and values, the first
    positions of each group's rows read from the group's prefix; `attention_mask` is (batch, 1, 1, positions),
    True where a row attends. Returns (batch, 1, heads, head dim), as transformers' attention functions do."""
    if not shared_prefixes or query.shape[2] != 1 or attention_mask is None:
        output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
        return output, None
    layer = int(module.layer_idx)  # type: ignore[arg-type]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5  # as SDPA scales
    output = torch.empty_like(query)
    for group in shared_prefixes:
        rows, length = group.rows, group.length
        queries = query[rows, :, 0]  # (rows, heads, dim)
        prefix_keys, prefix_values = group.cached.keys[layer], group.cached.values[layer]  # (heads, prefix, dim)
        # The prefix once for all the group's rows (heads as the batch), then each row's own positions.
        prefix_scores = torch.matmul(queries.transpose(0, 1), prefix_keys.transpose(1, 2)).transpose(0, 1)
        own_scores = torch.matmul(query[rows], key[rows, :, length:].transpose(-1, -2))[:, :, 0]
        scores = torch.cat([prefix_scores, own_scores], dim=-1) * scale
        scores = scores.masked_fill(~attention_mask[rows, 0], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        prefix_part = torch.matmul(weights[..., :length].transpose(0, 1), prefix_values).transpose(0, 1)
        own_part = torch.matmul(weights[:, :, None, length:], value[rows, :, length:])[:, :, 0]
        output[rows, :, 0] = prefix_part + own_part
    return output.transpose(1, 2).contiguous(), None


def use_shared_prefix_attention(model: Any) -> None:
    """Make `model` (a transformers model whose attention layers go through `AttentionInterface`) attend this way."""
    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    model.set_attn_implementation(SHARED_PREFIX_ATTENTION)
