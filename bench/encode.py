"""Encoder throughput: how many times faster than real time each response format encodes, on one core.

Run: `.venv/bin/python -m bench.encode`. Compares our in-process MP3 encoder (LAME through lameenc) with pydub's
MP3 export (which writes a temporary WAV and runs the ffmpeg binary on it) on the same input with the same LAME
settings.
"""

import io
import os
import shutil
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from tasks.spec import AudioFormat
from workers.audio.encoder import MP3_BIT_RATE_KBPS, MP3_QUALITY, StreamEncoder, encode
from workers.audio.loudness import to_int16
from workers.engines.base import Audio

SAMPLE_RATE = 24_000
SECONDS = 60.0
REPEATS = 5
STREAM_WRITE_SECONDS = 2.0
"""Streaming runs write the audio in pieces this long, like one synthesized text chunk at a time."""
FORMATS: tuple[AudioFormat, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")


def speech_like(seconds: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> Audio:
    """Voiced harmonics with a wandering pitch, cut into syllables, plus a little breath noise.

    The tests use it too: a stand-in for speech, since no audio files are checked in.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 40))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    noise = rng.normal(0, 0.02, t.size)
    samples: Audio = (syllables * (0.25 * voiced + noise)).astype(np.float32)
    return samples


def timings(run: Callable[[], object]) -> list[float]:
    run()  # warm-up: codec tables, imports, caches
    elapsed = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        elapsed.append(time.perf_counter() - start)
    return elapsed


def report(label: str, elapsed: list[float]) -> float:
    best = min(elapsed)
    print(
        f"{label:>15}: {SECONDS / best:6.0f}x realtime "
        f"(best {best * 1000:6.1f} ms, median {statistics.median(elapsed) * 1000:6.1f} ms)"
    )
    return best


def encode_streaming(samples: Audio, fmt: AudioFormat) -> bytes:
    encoder = StreamEncoder(fmt, SAMPLE_RATE)
    step = round(STREAM_WRITE_SECONDS * SAMPLE_RATE)
    parts = [encoder.write(samples[start : start + step]) for start in range(0, samples.size, step)]
    parts.append(encoder.close())
    return b"".join(parts)


def pydub_mp3(samples: Audio) -> bytes:
    from pydub import AudioSegment  # imported late: it warns at import when no ffmpeg binary is installed

    segment = AudioSegment(to_int16(samples).tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=1)
    out = io.BytesIO()
    # The LAME settings of workers/audio/encoder.py, so both do the same work.
    # FFmpeg's libmp3lame passes compression_level on as LAME's -q.
    segment.export(
        out, format="mp3", bitrate=f"{MP3_BIT_RATE_KBPS}k", parameters=["-compression_level", str(MP3_QUALITY)]
    )
    return out.getvalue()


def main() -> None:
    # One core for us and for pydub's ffmpeg child (which inherits the affinity), as on a busy worker.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    samples = speech_like(SECONDS, SAMPLE_RATE)
    print(f"{SECONDS:.0f} s of speech-like audio at {SAMPLE_RATE} Hz, one core, best of {REPEATS}")
    print("one-shot encode():")
    best: dict[str, float] = {}
    for fmt in FORMATS:
        best[fmt] = report(fmt, timings(partial(encode, samples, SAMPLE_RATE, fmt)))
    print(f"StreamEncoder, {STREAM_WRITE_SECONDS:.0f} s writes:")
    for fmt in FORMATS:
        report(fmt, timings(partial(encode_streaming, samples, fmt)))

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("pydub mp3: skipped, no ffmpeg binary on PATH (pydub's export runs it as a subprocess)")
        return
    print(f"pydub export (ffmpeg binary {ffmpeg}):")
    pydub_best = report("pydub mp3", timings(partial(pydub_mp3, samples)))
    print(f"ours/pydub (mp3): {pydub_best / best['mp3']:.1f}x")


if __name__ == "__main__":
    main()
