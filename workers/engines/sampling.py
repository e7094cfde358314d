"""Next-token sampling for a batch of rows, each with its own parameters.

transformers' logits processors take one value for a whole batch. These apply the same operations row by row in
one pass, with the same results as ChatterBox Turbo's own `T3.inference_turbo`, which applies, in this order and
each only when it changes anything: temperature, top-k, top-p, then the repetition penalty over the tokens the
row has generated. Every row can therefore keep its request's own temperature, top_k, top_p and penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FILTERED = -float("inf")


@dataclass(frozen=True)
class RowSampling:
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float


class BatchSampler:
    """Per-row sampling parameters as tensors, plus which tokens each row has produced (for the penalty).

    Rows are addressed by slot (0 .. slots - 1), like the KV cache; `move` follows a row that changes slot.
    """

    def __init__(self, slots: int, vocabulary: int, device: torch.device) -> None:
        self._temperature = torch.ones(slots, 1, device=device)
        self._top_k = torch.full((slots,), vocabulary, dtype=torch.long, device=device)
        self._top_p = torch.ones(slots, 1, device=device)
        self._penalty = torch.ones(slots, 1, device=device)
        self._seen = torch.zeros(slots, vocabulary, dtype=torch.bool, device=device)
        self._vocabulary = vocabulary

    def assign(self, slot: int, sampling: RowSampling, seen: list[int]) -> None:
        """Give `slot` a new row's parameters; `seen` are the tokens its first step penalises."""
        temperature = sampling.temperature
        self._temperature[slot] = temperature if temperature > 0 else 1.0
        self._top_k[slot] = min(sampling.top_k, self._vocabulary) if sampling.top_k > 0 else self._vocabulary
        self._top_p[slot] = sampling.top_p
        self._penalty[slot] = sampling.repetition_penalty
        self._seen[slot] = False
        self._seen[slot, seen] = True

    def move(self, source: int, target: int) -> None:
        for tensor in (self._temperature, self._top_k, self._top_p, self._penalty, self._seen):
            tensor[target] = tensor[source]

    def forget_seen(self, slot: int) -> None:
        self._seen[slot] = False

    def record(self, first: int, tokens: torch.Tensor) -> None:
        """The rows in slots `first ..` produced `tokens` (one each; -1: none)."""
        slots = torch.arange(first, first + len(tokens), device=tokens.device)
        produced = tokens >= 0
        self._seen[slots[produced], tokens[produced]] = True

    def sample(self, first: int, logits: torch.Tensor) -> torch.Tensor:
        """Next tokens of the rows in slots `first .. first + len(logits)`; `logits` is (rows, vocabulary).

        Returns -1 for a row whose every logit was filtered (inference_turbo stops such a row).
        """
        rows = slice(first, first + logits.shape[0])
        scores = logits.float() / self._temperature[rows]
        scores = _top_k(scores, self._top_k[rows])
        scores = _top_p(scores, self._top_p[rows])
        penalty = self._penalty[rows]
        penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
        scores = torch.where(self._seen[rows], penalised, scores)
        dead = torch.isinf(scores).all(dim=-1)
        probabilities = torch.softmax(scores.masked_fill(dead[:, None], 0.0), dim=-1)
        tokens = torch.multinomial(probabilities, num_samples=1).squeeze(1)
        return torch.where(dead, torch.full_like(tokens, -1), tokens)


def _top_k(scores: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    # As TopKLogitsWarper: drop what is below each row's k-th largest score (ties with it are kept).
    largest = int(top_k.max())
    if largest >= scores.shape[-1] and bool((top_k >= scores.shape[-1]).all()):
        return scores
    top = torch.topk(scores, largest, dim=-1).values
    threshold = top.gather(1, (top_k - 1).clamp(max=largest - 1)[:, None])
    return scores.masked_fill(scores < threshold, FILTERED)


def _top_p(scores: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    # As TopPLogitsWarper: drop the least likely tokens whose total probability is at most 1 - top_p, always
    # keeping the most likely one.
    if bool((top_p >= 1.0).all()):
        return scores
    ascending, order = torch.sort(scores, descending=False, dim=-1)
    cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[:, -1] = False
    return scores.masked_fill(remove.scatter(1, order, remove), FILTERED)
