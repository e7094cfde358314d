"""Sample-rate conversion (the espeak engine speaks at 22050 Hz; responses go out at 24 kHz)."""

import av
import numpy as np

from workers.audio.piecewise import PiecewiseFilter, whole
from workers.engines.base import Audio

# Silence fed at the end: the resampler's filter keeps its last samples back (and gives nothing at all for very
# short inputs), so flushing it with 10 ms and trimming to the exact length loses nothing.
_PADDING_SECONDS = 0.01


class Resampler(PiecewiseFilter):
    def __init__(self, from_rate: int, to_rate: int) -> None:
        super().__init__(to_rate / from_rate, round(from_rate * _PADDING_SECONDS) + 1)
        self._from_rate = from_rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)

    def _filter(self, samples: Audio) -> Audio:
        frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._from_rate
        return _joined(self._resampler.resample(frame))

    def _flush(self) -> Audio:
        return _joined(self._resampler.resample(None))


def resample(samples: Audio, from_rate: int, to_rate: int) -> Audio:
    """Samples at `to_rate`; the result has exactly round(len * to_rate / from_rate) samples."""
    if from_rate == to_rate:
        return samples
    return whole(Resampler(from_rate, to_rate), samples)


def _joined(frames: list[av.AudioFrame]) -> Audio:
    converted: Audio = np.concatenate([np.zeros(0, dtype=np.float32), *(f.to_ndarray()[0] for f in frames)])
    return converted.astype(np.float32, copy=False)
