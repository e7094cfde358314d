"""A key/value cache of fixed slots, one per decoding sequence, for continuous batching through Hugging Face models.

transformers' own caches hold one batch that starts and grows together. Here every sequence owns a slot (a row of
preallocated key and value buffers, one pair per layer) with a length of its own: a sequence joins by writing its
prompt into a free slot and leaves by freeing it, between any two decode steps. Active sequences are kept in the
first slots, so a decode step attends over a plain view of the buffers, never a gathered copy; a mask hides each
row's unused positions.

The model sees an ordinary `transformers.Cache`: before each forward pass the decoder says which slots take part
and where each writes (`plan_prefill` / `plan_decode`), and every attention layer's `update` writes its new keys
and values there and returns the view to attend over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


@dataclass
class _Plan:
    """Where the coming forward pass writes: rows `first .. first + rows` of the buffers, from `positions`."""

    first: int
    rows: int
    positions: torch.Tensor
    """Start position of each row's new tokens (decode: one token per row)."""
    kv_length: int
    """Positions to attend over, the longest row's new length."""
    prefill: bool


class _SlotLayer(CacheLayerMixin):
    is_sliding = False

    def __init__(self, cache: SlotCache) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._cache = cache

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        shape = (self._cache.slots, key_states.shape[1], self._cache.capacity, key_states.shape[3])
        self.keys = torch.zeros(shape, dtype=key_states.dtype, device=key_states.device)
        self.values = torch.zeros(shape, dtype=value_states.dtype, device=value_states.device)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, cache_kwargs: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        assert self.keys is not None and self.values is not None
        plan = self._cache.plan
        rows = slice(plan.first, plan.first + plan.rows)
        if plan.prefill:
            length = key_states.shape[2]
            self.keys[rows, :, :length] = key_states
            self.values[rows, :, :length] = value_states
        else:
            index = torch.arange(plan.first, plan.first + plan.rows, device=key_states.device)
            self.keys[index, :, plan.positions] = key_states[:, :, 0]
            self.values[index, :, plan.positions] = value_states[:, :, 0]
        return self.keys[rows, :, : plan.kv_length], self.values[rows, :, : plan.kv_length]

    def move(self, source: int, target: int, length: int) -> None:
        if self.keys is not None and self.values is not None:
            self.keys[target, :, :length] = self.keys[source, :, :length]
            self.values[target, :, :length] = self.values[source, :, :length]

    def get_mask_sizes(self, cache_position: torch.Tensor) -> tuple[int, int]:
        return self._cache.plan.kv_length, 0

    def get_seq_length(self) -> int:
        return self._cache.plan.kv_length if self._cache.planned else 0

    def get_max_cache_shape(self) -> int:
        return self._cache.capacity


class SlotCache(Cache):
    """`slots` sequences of up to `capacity` positions each, for a model of `layers` attention layers."""

    def __init__(self, layers: int, slots: int, capacity: int) -> None:
        self.slots = slots
        self.capacity = capacity
        self._plan: _Plan | None = None
        super().__init__(layers=[_SlotLayer(self) for _ in range(layers)])

    @property
    def planned(self) -> bool:
        return self._plan is not None

    @property
    def plan(self) -> _Plan:
        if self._plan is None:
            raise RuntimeError("plan the forward pass first (plan_prefill or plan_decode)")
        return self._plan

    def plan_prefill(self, slot: int, length: int, device: torch.device) -> torch.Tensor:
        """Write a `length`-token prompt into `slot`; returns the causal attention mask for it."""
        self._check(length)
        self._plan = _Plan(slot, 1, torch.zeros(1, dtype=torch.long), length, prefill=True)
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        return causal[None, None]

    def plan_decode(self, lengths: torch.Tensor) -> torch.Tensor:
        """One new token for each of the first `len(lengths)` slots, written after its `lengths[i]` cached ones;
        returns the attention mask (row i attends to its first lengths[i] + 1 positions)."""
        kv_length = int(lengths.max()) + 1
        self._check(kv_length)
        self._plan = _Plan(0, len(lengths), lengths, kv_length, prefill=False)
        positions = torch.arange(kv_length, device=lengths.device)
        return (positions[None, :] <= lengths[:, None])[:, None, None, :]

    def move(self, source: int, target: int, length: int) -> None:
        """Copy the first `length` positions of slot `source` into slot `target` (compaction after a row leaves)."""
        for layer in self.layers:
            assert isinstance(layer, _SlotLayer)
            layer.move(source, target, length)

    def _check(self, length: int) -> None:
        if length > self.capacity:
            raise ValueError(f"a sequence of {length} positions does not fit a slot of {self.capacity}")
