"""T3's projections for a decode step of N rows: GPT-2's own `Conv1D` (torch's `addmm`, MKL's sgemm on a CPU)
against the packed copy the batching engine decodes several rows through (workers/engines/packed_projections.py).

Turbo's T3 is GPT-2 medium: 24 layers of four projections (1024 -> 3072, 1024 -> 1024, 1024 -> 4096,
4096 -> 1024). The two are timed in turns, on the same weights and inputs, in one run; each figure is the median of
ROUNDS steps. Run: `python -m bench.projections [--threads 2]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
from transformers import GPT2Config, GPT2Model
from transformers.pytorch_utils import Conv1D

from workers.engines.packed_projections import PackedConv1D

ROWS = (1, 2, 4, 8, 16)
ROUNDS = 7
PACKED_FOR_ROWS = 16


def step_ms(layers: Sequence[torch.nn.Module], inputs: list[torch.Tensor]) -> float:
    """One decode step's projections, every layer's four, each on its input."""
    started = time.perf_counter()
    for layer, x in zip(layers, inputs, strict=True):
        layer(x)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_embd=1024, n_head=16, vocab_size=8)  # type: ignore[no-untyped-call]
    model = GPT2Model(config).eval()  # type: ignore[no-untyped-call]
    library = [module for module in model.modules() if isinstance(module, Conv1D)]
    packed = [PackedConv1D(conv, PACKED_FOR_ROWS) for conv in library]
    print(f"GPT-2 medium's {len(library)} projections a decode step, torch {torch.__version__}, {args.threads} threads")
    print("rows | Conv1D (MKL) ms | packed (oneDNN) ms | Conv1D / packed | Conv1D vs its 1 row | packed vs 1 row")
    one_row: dict[str, float] = {}
    with torch.inference_mode():
        for rows in ROWS:
            inputs = [torch.randn(rows, 1, conv.nx) for conv in library]
            times: dict[str, list[float]] = {"library": [], "packed": []}
            step_ms(library, inputs), step_ms(packed, inputs)  # warm
            for _ in range(ROUNDS):
                times["library"].append(step_ms(library, inputs))
                times["packed"].append(step_ms(packed, inputs))
            ours, theirs = statistics.median(times["packed"]), statistics.median(times["library"])
            one_row = one_row or {"library": theirs, "packed": ours}
            print(f"{rows:4d} | {theirs:15.1f} | {ours:18.1f} | {theirs / ours:14.2f}x "
                  f"| {theirs / one_row['library']:18.2f}x | {ours / one_row['packed']:14.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
