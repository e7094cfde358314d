"""The Perth watermark on a chunk that goes out in pieces.

Perth marks a signal through its short-time spectrum and rebuilds it with the original phase, so a piece marked
alone comes out altered near both its edges, where its frames lack neighbours. Each piece is therefore marked with
the chunk's preceding audio in front of it, and its own last samples wait to be marked again, with what follows
them, as part of the next piece: every sample that goes out was marked with at least CONTEXT_SAMPLES of the chunk
on either side of it (but at the chunk's two ends, as when the chunk is marked whole).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.engines.base import Audio

CONTEXT_SAMPLES = 4800
"""0.2 s at 24 kHz: many of Perth's analysis frames."""


class PieceWatermarker:
    def __init__(self, watermarker: Any, sample_rate: int) -> None:
        self._watermarker = watermarker
        self._sample_rate = sample_rate
        self._before = np.zeros(0, dtype=np.float32)
        """Unmarked audio already sent, kept as context for the next piece."""
        self._waiting = np.zeros(0, dtype=np.float32)
        """Unmarked audio not sent yet: the end of the last piece."""

    def push(self, piece: Audio, *, final: bool) -> Audio:
        """The marked audio to send for this piece (all that is left when `final`)."""
        pending = np.concatenate([self._waiting, piece.astype(np.float32, copy=False)])
        if pending.size == 0:
            return pending
        window = np.concatenate([self._before, pending])
        marked = np.asarray(self._watermarker.apply_watermark(window, sample_rate=self._sample_rate), dtype=np.float32)
        marked = marked[self._before.size :]
        held = 0 if final else min(CONTEXT_SAMPLES, pending.size)
        sent = pending[: pending.size - held]
        self._before = np.concatenate([self._before, sent])[-CONTEXT_SAMPLES:]
        self._waiting = pending[pending.size - held :]
        return marked[: marked.size - held]
