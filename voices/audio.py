"""Validation and normalisation of uploaded reference clips.

Every upload is decoded with PyAV (so the format check is real, not a guess from the name) and stored as a
16-bit mono WAV at the clip's own sample rate: the engines resample references themselves, and keeping the
native rate avoids a lossy resampling step here. Workers therefore only ever read WAVs.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer

from voices.errors import VoiceUploadError

_SAMPLE_WIDTH_BYTES = 2


@dataclass(frozen=True)
class NormalizedClip:
    wav: bytes
    sample_rate: int
    duration_s: float


@dataclass(frozen=True)
class _DecodedAudio:
    chunks: list[npt.NDArray[np.int16]]
    sample_rate: int
    sample_count: int


def normalize_clip(data: bytes, *, filename_hint: str | None, max_bytes: int, max_duration_s: float) -> NormalizedClip:
    """Check an uploaded clip and re-encode it as a 16-bit mono WAV; raises VoiceUploadError."""
    label = repr(filename_hint) if filename_hint else "The uploaded file"
    if len(data) > max_bytes:
        raise VoiceUploadError(f"{label} is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data:
        raise VoiceUploadError(f"{label} is empty")
    decoded = _decode_to_mono_s16(data, label=label, max_duration_s=max_duration_s)
    if decoded.sample_count == 0:
        raise VoiceUploadError(f"{label} contains no audio samples")
    duration_s = decoded.sample_count / decoded.sample_rate
    if duration_s > max_duration_s:
        raise VoiceUploadError(
            f"{label} is {duration_s:.1f} s long; reference clips may be at most {max_duration_s:g} s"
        )
    return NormalizedClip(
        wav=_encode_wav(decoded.chunks, decoded.sample_rate),
        sample_rate=decoded.sample_rate,
        duration_s=duration_s,
    )


def _decode_to_mono_s16(data: bytes, *, label: str, max_duration_s: float) -> _DecodedAudio:
    chunks: list[npt.NDArray[np.int16]] = []
    sample_count = 0
    sample_rate = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise VoiceUploadError(f"{label} has no audio stream")
            for mono in _mono_s16_frames(container, container.streams.audio[0]):
                sample_rate = mono.sample_rate
                # Past the limit, keep counting (to report the real duration) but stop keeping samples.
                if sample_count <= max_duration_s * sample_rate:
                    chunks.append(mono.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                sample_count += mono.samples
    except av.FFmpegError as exc:
        raise VoiceUploadError(f"{label} could not be decoded as audio") from exc
    return _DecodedAudio(chunks=chunks, sample_rate=sample_rate, sample_count=sample_count)


def _mono_s16_frames(container: InputContainer, stream: AudioStream) -> Iterator[av.AudioFrame]:
    resampler: av.AudioResampler | None = None
    for frame in container.decode(stream):
        if resampler is None:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=frame.sample_rate)
        yield from resampler.resample(frame)
    if resampler is not None:
        yield from resampler.resample(None)


def _encode_wav(chunks: list[npt.NDArray[np.int16]], sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(_SAMPLE_WIDTH_BYTES)
        wav_file.setframerate(sample_rate)
        wav_file.writeframes(np.concatenate(chunks).astype("<i2").tobytes())
    return buffer.getvalue()
