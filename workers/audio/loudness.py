"""Level handling: loudness normalization and the float-to-integer conversion every encoder shares."""

import numpy as np
import numpy.typing as npt

from workers.engines.base import Audio

PEAK_CEILING = 0.99
INT16_SCALE = 32767


def clip_to_unit(samples: Audio) -> Audio:
    """Samples forced into [-1, 1]: NaN becomes silence, anything beyond full scale is clipped."""
    finite = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(finite, -1.0, 1.0).astype(np.float32, copy=False)


def to_int16(samples: Audio) -> npt.NDArray[np.int16]:
    """16-bit little-endian PCM; values beyond full scale clip instead of wrapping around, NaN becomes 0."""
    scaled = np.rint(clip_to_unit(samples) * INT16_SCALE)
    pcm: npt.NDArray[np.int16] = scaled.astype("<i2")
    return pcm


def normalize_loudness(samples: Audio, target_dbfs: float) -> Audio:
    """Scale to an RMS level of `target_dbfs` (0 dBFS: RMS of a full-scale square wave).

    The gain is capped so the peak lands at 0.99 at most: a quieter result beats a clipped one. Silence stays
    silence; NaN and infinite samples count as silence.
    """
    finite = np.where(np.isfinite(samples), samples, np.float32(0)).astype(np.float32, copy=False)
    rms = float(np.sqrt(np.mean(np.square(finite, dtype=np.float64)))) if finite.size else 0.0
    if rms == 0.0:
        return finite
    gain = min(10.0 ** (target_dbfs / 20.0) / rms, PEAK_CEILING / float(np.max(np.abs(finite))))
    return finite * np.float32(gain)
