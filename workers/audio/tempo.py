"""Speaking-rate change that keeps the pitch, through FFmpeg's `atempo` filter."""

from fractions import Fraction
from typing import cast

import av
import numpy as np
from av.filter.context import FilterContext

from workers.audio.piecewise import PiecewiseFilter, whole
from workers.engines.base import Audio

MIN_SPEED = 0.25
MAX_SPEED = 4.0
# One atempo instance blends (rather than skips) samples only for factors in 0.5..2.0, so bigger ones chain.
_ATEMPO_MAX = 2.0
# atempo works in overlapping windows and drops the last partial one at the end of input; trailing silence
# carries the real end through, and the result is cut to the exact length.
_PADDING_SECONDS = 0.1


class TempoChanger(PiecewiseFilter):
    """`speed` times faster at the same pitch, fed in pieces."""

    def __init__(self, sample_rate: int, speed: float) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
        super().__init__(1 / speed, round(sample_rate * _PADDING_SECONDS))
        self._sample_rate = sample_rate
        self._graph, self._sink = _atempo_graph(sample_rate, speed)
        self._pts = 0

    def _filter(self, samples: Audio) -> Audio:
        frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._sample_rate
        frame.time_base = Fraction(1, self._sample_rate)
        frame.pts = self._pts
        self._pts += samples.size
        self._graph.push(frame)
        return self._pull()

    def _flush(self) -> Audio:
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> Audio:
        pieces = [np.zeros(0, dtype=np.float32)]
        while True:
            try:
                pieces.append(cast(av.AudioFrame, self._sink.pull()).to_ndarray()[0])
            except (av.BlockingIOError, av.EOFError):
                break
        return np.concatenate(pieces).astype(np.float32, copy=False)


def change_tempo(samples: Audio, sample_rate: int, speed: float) -> Audio:
    """Samples played `speed` times faster, at the same pitch: exactly round(len / speed) samples long."""
    changer = TempoChanger(sample_rate, speed)
    if speed == 1.0 or samples.size == 0:
        return samples
    return whole(changer, samples)


def _atempo_graph(sample_rate: int, speed: float) -> tuple[av.filter.Graph, FilterContext]:
    """abuffer -> atempo x n -> abuffersink, with equal atempo factors multiplying to `speed`."""
    stages = 1
    while not 1 / _ATEMPO_MAX <= speed ** (1 / stages) <= _ATEMPO_MAX:
        stages += 1
    graph = av.filter.Graph()
    node = graph.add_abuffer(format="flt", sample_rate=sample_rate, layout="mono", time_base=Fraction(1, sample_rate))
    for _ in range(stages):
        stage = graph.add("atempo", tempo=repr(speed ** (1 / stages)))
        node.link_to(stage)
        node = stage
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    return graph, sink
