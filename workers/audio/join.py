"""Joining synthesized chunks into one stream without clicks at the seams.

With a pause, each seam is an equal-power fade-out of the earlier chunk's end, `pause_ms` of silence, and
a fade-in of the later chunk's start. Without one, the chunks overlap by the fade length and crossfade with
equal power (cos/sin gains, whose squares sum to one, so uncorrelated speech keeps its loudness).
"""

from collections.abc import Iterable

import numpy as np

from workers.engines.base import Audio

_EMPTY: Audio = np.zeros(0, dtype=np.float32)


class ChunkJoiner:
    """Joins chunks as they arrive, giving back every sample that no later chunk can change."""

    def __init__(self, sample_rate: int, pause_ms: float, crossfade_ms: float) -> None:
        if pause_ms < 0 or crossfade_ms < 0:
            raise ValueError("pause_ms and crossfade_ms must not be negative")
        self._pause = np.zeros(round(sample_rate * pause_ms / 1000), dtype=np.float32)
        self._fade_length = round(sample_rate * crossfade_ms / 1000)
        self._tail: Audio | None = None
        """The end of the stream so far, held back until the next chunk (or finish) decides its fade."""

    def push(self, chunk: Audio, *, continues: bool = False) -> Audio:
        """Adds a chunk, or with `continues` the next piece of the chunk being pushed (a streaming engine gives a
        chunk in pieces: they follow on without a seam; pieces at least as long as the crossfade join exactly as
        the whole chunk would); returns the samples now final. Empty input is skipped: it adds no pause either."""
        if chunk.size == 0:
            return _EMPTY
        chunk = chunk.astype(np.float32, copy=False)
        if self._tail is None:
            joined = chunk
        elif continues:
            joined = np.concatenate([self._tail, chunk])
        elif self._pause.size:
            joined = np.concatenate([_fade_out(self._tail), self._pause, _fade_in(chunk, self._fade_length)])
        else:
            joined = _crossfade(self._tail, chunk)
        held = min(self._fade_length, chunk.size)
        self._tail = joined[joined.size - held :]
        return joined[: joined.size - held]

    def finish(self) -> Audio:
        """The held-back end of the last chunk, unfaded: the stream ends as the engine ended it."""
        tail, self._tail = self._tail, None
        return _EMPTY if tail is None else tail


def join_chunks(chunks: Iterable[Audio], sample_rate: int, pause_ms: float, crossfade_ms: float) -> Audio:
    joiner = ChunkJoiner(sample_rate, pause_ms, crossfade_ms)
    pieces = [joiner.push(chunk) for chunk in chunks]
    pieces.append(joiner.finish())
    return np.concatenate(pieces)


def _rising_gain(length: int) -> Audio:
    """Equal-power fade-in gains, sampled at sample centres so neither end is exactly 0 or 1."""
    if length == 0:
        return _EMPTY
    phase = (np.arange(length, dtype=np.float64) + 0.5) * (np.pi / 2 / length)
    gains: Audio = np.sin(phase).astype(np.float32)
    return gains


def _fade_in(samples: Audio, length: int) -> Audio:
    """`samples` fading in over the first `length` of them (over all of them when there are fewer)."""
    faded = samples.copy()
    ramp = min(length, samples.size)
    faded[:ramp] *= _rising_gain(ramp)
    return faded


def _fade_out(tail: Audio) -> Audio:
    return tail * _rising_gain(tail.size)[::-1]


def _crossfade(earlier: Audio, later: Audio) -> Audio:
    """A held tail overlapped with the start of `later` over as many samples as both have."""
    overlap = min(earlier.size, later.size)
    split = earlier.size - overlap
    mixed = _fade_out(earlier[split:]) + _fade_in(later[:overlap], overlap)
    return np.concatenate([earlier[:split], mixed, later[overlap:]])
