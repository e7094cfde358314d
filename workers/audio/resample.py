"""Sample-rate conversion (the espeak engine speaks at 22050 Hz; responses go out at 24 kHz)."""

import av
import numpy as np

from workers.engines.base import Audio

# Silence appended before resampling: the resampler's filter keeps its last samples back (and gives nothing at
# all for very short inputs), so padding with 10 ms and trimming to the exact length loses nothing.
_PADDING_SECONDS = 0.01


def resample(samples: Audio, from_rate: int, to_rate: int) -> Audio:
    """Samples at `to_rate`; the result has exactly round(len * to_rate / from_rate) samples."""
    if from_rate == to_rate:
        return samples
    target_length = round(samples.size * to_rate / from_rate)
    if target_length == 0:
        return np.zeros(0, dtype=np.float32)
    silence = np.zeros(round(from_rate * _PADDING_SECONDS) + 1, dtype=np.float32)
    padded = np.concatenate([samples.astype(np.float32, copy=False), silence])
    frame = av.AudioFrame.from_ndarray(padded[np.newaxis, :], format="flt", layout="mono")
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frames = resampler.resample(frame) + resampler.resample(None)
    converted: Audio = np.concatenate([f.to_ndarray()[0] for f in frames])
    return converted[:target_length].astype(np.float32, copy=False)
