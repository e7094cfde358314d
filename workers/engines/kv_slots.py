"""A key/value cache of fixed slots, one per decoding sequence, for continuous batching through Hugging Face models.

transformers' own caches hold one batch that starts and grows together. Here every sequence owns a slot (a row of
preallocated key and value buffers, one pair per layer) with a length of its own: a sequence joins by writing its
prompt into a free slot and leaves by freeing it, between any two decode steps. Active sequences are kept in the
first slots, so a decode step attends over a plain view of the buffers, never a gathered copy; a mask hides each
row's unused positions.

The model sees an ordinary `transformers.Cache`: before each forward pass the decoder says which slots take part
and where each writes (`plan_prefill` / `plan_decode`), and every attention layer's `update` writes its new keys
and values there and returns the view to attend over.

A prompt that starts with the same positions as an earlier one (a voice's conditioning) need not run them again:
`prefix` copies a slot's first positions out, `restore` writes them into another slot, and `plan_prefill` with a
`start` runs only the rest of the prompt, attending over the restored positions.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


@dataclass
class _Plan:
    """Where the coming forward pass writes: rows `first .. first + rows` of the buffers, from `positions`."""

    first: int
    rows: int
    positions: torch.Tensor
    """Start position of each row's new tokens (decode: one token per row; prefill: where the prompt goes on)."""
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
            start = plan.kv_length - key_states.shape[2]
            self.keys[rows, :, start : plan.kv_length] = key_states
            self.values[rows, :, start : plan.kv_length] = value_states
        else:
            index = torch.arange(plan.first, plan.first + plan.rows, device=key_states.device)
            self.keys[index, :, plan.positions] = key_states[:, :, 0]
            self.values[index, :, plan.positions] = value_states[:, :, 0]
        return self.keys[rows, :, : plan.kv_length], self.values[rows, :, : plan.kv_length]

    def move(self, source: int, target: int, length: int) -> None:
        if self.keys is not None and self.values is not None:
            self.keys[target, :, :length] = self.keys[source, :, :length]
            self.values[target, :, :length] = self.values[source, :, :length]

    def prefix(self, slot: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.keys is not None and self.values is not None, "a prefix is taken after a forward pass"
        return self.keys[slot, :, :length].clone(), self.values[slot, :, :length].clone()

    def restore(self, slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        assert self.keys is not None and self.values is not None, "a prefix is restored into a used cache"
        self.keys[slot, :, : keys.shape[1]] = keys
        self.values[slot, :, : values.shape[1]] = values

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

    def plan_prefill(self, slot: int, length: int, device: torch.device, start: int = 0) -> torch.Tensor:
        """Write `length` prompt tokens into `slot` from position `start` (the positions before it already there);
        returns the causal attention mask for them."""
        self._check(start + length)
        self._plan = _Plan(slot, 1, torch.tensor([start]), start + length, prefill=True)
        causal = torch.ones(length, start + length, dtype=torch.bool, device=device).tril(diagonal=start)
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
        for layer in self._layers():
            layer.move(source, target, length)

    def prefix(self, slot: int, length: int) -> CachedPrefix:
        """A copy of the first `length` positions of `slot`, to `restore` into any slot later."""
        layers = [layer.prefix(slot, length) for layer in self._layers()]
        return CachedPrefix([keys for keys, _ in layers], [values for _, values in layers])

    def restore(self, slot: int, prefix: CachedPrefix) -> None:
        """Write a prefix taken by `prefix` into the first positions of `slot`."""
        for layer, keys, values in zip(self._layers(), prefix.keys, prefix.values, strict=True):
            layer.restore(slot, keys, values)

    def _layers(self) -> list[_SlotLayer]:
        layers = [layer for layer in self.layers if isinstance(layer, _SlotLayer)]
        assert len(layers) == len(self.layers)
        return layers

    def _check(self, length: int) -> None:
        if length > self.capacity:
            raise ValueError(f"a sequence of {length} positions does not fit a slot of {self.capacity}")


@dataclass(frozen=True)
class CachedPrefix:
    """The keys and values of a slot's first positions, one (heads, positions, head dim) pair per layer."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]


K = TypeVar("K")


class PrefixStore(Generic[K]):
    """The prefixes of the last `capacity` keys used (a voice's conditionals), by identity: the key is kept with its
    prefix, so its id is never reused while the prefix is here."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[K, CachedPrefix]] = OrderedDict()

    def get(self, key: K) -> CachedPrefix | None:
        entry = self._entries.get(id(key))
        if entry is None:
            return None
        self._entries.move_to_end(id(key))
        return entry[1]

    def put(self, key: K, prefix: CachedPrefix) -> None:
        self._entries[id(key)] = (key, prefix)
        self._entries.move_to_end(id(key))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
