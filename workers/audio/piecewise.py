"""Filters fed a chunk's audio piece by piece (as a streaming engine makes it) that give, over the whole chunk,
exactly what one call over all of it gives: stateful across pieces, and exactly round(n * ratio) samples long."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from workers.engines.base import Audio

_EMPTY: Audio = np.zeros(0, dtype=np.float32)


class PiecewiseFilter(ABC):
    def __init__(self, ratio: float, padding: int) -> None:
        """`ratio`: output samples per input sample; `padding`: silence fed at the end to flush the filter."""
        self._ratio = ratio
        self._padding = padding
        self._taken = 0
        self._given = 0

    def push(self, samples: Audio) -> Audio:
        """The output now available for these samples (the filter may hold some back until later)."""
        if samples.size == 0:
            return _EMPTY
        self._taken += samples.size
        return self._count(self._filter(samples.astype(np.float32, copy=False)))

    def finish(self) -> Audio:
        """The rest: the whole output is now exactly round(input length * ratio) samples."""
        target = round(self._taken * self._ratio)
        if self._taken == 0 or self._given >= target:
            return _EMPTY
        tail = np.concatenate([self._filter(np.zeros(self._padding, dtype=np.float32)), self._flush()])
        wanted = target - self._given
        tail = np.pad(tail[:wanted], (0, max(0, wanted - tail.size))).astype(np.float32, copy=False)
        self._given = target
        return tail

    def _count(self, output: Audio) -> Audio:
        self._given += output.size
        return output

    @abstractmethod
    def _filter(self, samples: Audio) -> Audio: ...

    @abstractmethod
    def _flush(self) -> Audio:
        """Everything the filter still holds, at the end of input."""


def whole(filter_: PiecewiseFilter, samples: Audio) -> Audio:
    """One call's worth: all of `samples` through the filter."""
    return np.concatenate([filter_.push(samples), filter_.finish()])


class FilterChain:
    """Filters one after the other, fed piece by piece like one."""

    def __init__(self, filters: list[PiecewiseFilter]) -> None:
        self._filters = filters

    def push(self, samples: Audio) -> Audio:
        for filter_ in self._filters:
            samples = filter_.push(samples)
        return samples

    def finish(self) -> Audio:
        samples = _EMPTY
        for filter_ in self._filters:
            samples = np.concatenate([filter_.push(samples), filter_.finish()])
        return samples
