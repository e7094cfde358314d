"""Real audio for tests that upload reference clips."""

from __future__ import annotations

import io
import math
import wave

import av


def wav_bytes(seconds: float = 2.0, rate: int = 24000) -> bytes:
    """A real 16-bit mono WAV: a 220 Hz tone."""
    samples = (int(9000 * math.sin(2 * math.pi * 220 * n / rate)) for n in range(int(seconds * rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(b"".join(sample.to_bytes(2, "little", signed=True) for sample in samples))
    return buffer.getvalue()


def decoded_seconds(data: bytes) -> float:
    """How long an encoded clip (any format PyAV reads) lasts, from its decoded samples."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate
