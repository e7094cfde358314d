"""Streaming encoders: float samples in, a valid file of the response format out, a piece at a time.

One `StreamEncoder` serves one response, through the backend of its format: MP3 through LAME (the lameenc
wheel), the other compressed formats through a PyAV (FFmpeg) muxer writing into memory, wav and pcm as 16-bit
samples with (wav) a 44-byte header, written directly.
"""

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Protocol

import av
import lameenc
import numpy as np

from tasks.spec import AudioFormat
from workers.audio.loudness import clip_to_unit, to_int16
from workers.engines.base import Audio

MP3_BIT_RATE_KBPS = 64
MP3_QUALITY = 3
"""LAME's -q (2 best, 7 fastest); 3 is LAME's default. bench/encode.py gives pydub the same settings."""


class _Encoding(Protocol):
    """One file being encoded: the bytes of every `write` and of the one `close`, joined, are the file."""

    def write(self, samples: Audio) -> bytes: ...

    def close(self) -> bytes: ...


class _Backend(Protocol):
    def open(self, sample_rate: int) -> _Encoding: ...


class StreamEncoder:
    """Encodes one response incrementally: the bytes of every `write` and of `close`, joined, are the file."""

    def __init__(self, fmt: AudioFormat, sample_rate: int) -> None:
        self._encoding = _BACKENDS[fmt].open(sample_rate)
        self._closed = False

    def write(self, samples: Audio) -> bytes:
        """Encodes more samples; returns the bytes this produced (possibly none while the codec buffers)."""
        if self._closed:
            raise ValueError("write to a closed StreamEncoder")
        return self._encoding.write(samples)

    def close(self) -> bytes:
        """Flushes the codec; returns the last bytes of the file. Closing again returns nothing."""
        if self._closed:
            return b""
        self._closed = True
        return self._encoding.close()


def encode(samples: Audio, sample_rate: int, fmt: AudioFormat) -> bytes:
    """A whole file at once."""
    encoder = StreamEncoder(fmt, sample_rate)
    return encoder.write(samples) + encoder.close()


def wav_stream_header(sample_rate: int) -> bytes:
    """Header of a 16-bit mono PCM WAV of unknown length: RIFF and data sizes 0xFFFFFFFF, as OpenAI sends."""
    unknown_size = 0xFFFFFFFF
    bytes_per_sample = 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        unknown_size,
        b"WAVE",
        b"fmt ",
        16,  # size of the fmt chunk
        1,  # PCM
        1,  # channels
        sample_rate,
        sample_rate * bytes_per_sample,  # byte rate
        bytes_per_sample,  # block align
        8 * bytes_per_sample,
        b"data",
        unknown_size,
    )


# --- wav and pcm ---


@dataclass(frozen=True)
class _Int16:
    wav_header: bool

    def open(self, sample_rate: int) -> _Encoding:
        return _Int16Encoding(wav_stream_header(sample_rate) if self.wav_header else b"")


class _Int16Encoding:
    def __init__(self, header: bytes) -> None:
        self._unsent_header = header

    def write(self, samples: Audio) -> bytes:
        out = self._unsent_header + to_int16(samples).tobytes()
        self._unsent_header = b""
        return out

    def close(self) -> bytes:
        out, self._unsent_header = self._unsent_header, b""
        return out


# --- mp3 ---


@dataclass(frozen=True)
class _Lame:
    """LAME through lameenc: a plain stream of MP3 frames, with no Xing/LAME header and no ID3 tag (both are
    written at the end of a file, which a sent stream cannot be). LAME resamples rates MP3 lacks itself.

    lameenc's own LAME build is over 2.5x faster than the libmp3lame inside the PyAV wheel, and faster than
    the system ffmpeg binary that pydub runs (bench/encode.py).
    """

    bit_rate_kbps: int
    quality: int

    def open(self, sample_rate: int) -> _Encoding:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(self.bit_rate_kbps)
        encoder.set_in_sample_rate(sample_rate)
        encoder.set_channels(1)
        encoder.set_quality(self.quality)
        encoder.silence()  # no messages on stderr
        return _LameEncoding(encoder)


class _LameEncoding:
    def __init__(self, encoder: lameenc.Encoder) -> None:
        self._encoder = encoder
        self._started = False

    def write(self, samples: Audio) -> bytes:
        if samples.size == 0:
            return b""
        self._started = True
        return bytes(self._encoder.encode(to_int16(samples).tobytes()))

    def close(self) -> bytes:
        # lameenc starts LAME on the first encode, and refuses to flush before it: no samples, no frames.
        return bytes(self._encoder.flush()) if self._started else b""


# --- opus, aac, flac ---


@dataclass(frozen=True)
class _PyAV:
    muxer: str
    encoder: Literal["libopus", "aac", "flac"]
    bit_rate: int | None
    muxer_options: dict[str, str] = field(default_factory=dict)
    encoder_options: dict[str, str] = field(default_factory=dict)

    def open(self, sample_rate: int) -> _Encoding:
        return _PyAVEncoding(self, sample_rate)


class _ByteSink:
    """Write-only file object collecting the muxer's output until drained.

    It has no seek/tell on purpose: muxers then treat the output as a stream and never go back to patch a
    header (FLAC, for one, leaves the total length in its STREAMINFO unset, which decoders accept).
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _PyAVEncoding:
    def __init__(self, codec: _PyAV, sample_rate: int) -> None:
        self._sink = _ByteSink()
        self._container = av.open(
            self._sink,
            mode="w",
            format=codec.muxer,
            # flush_packets: hand every packet to the sink at once instead of filling a 32 KiB buffer first.
            container_options={**codec.muxer_options, "flush_packets": "1"},
        )
        # PyAV's encoder converts sample format, rate and frame size from whatever frames it is given.
        self._stream = self._container.add_stream(
            codec.encoder,
            rate=_nearest_supported_rate(codec.encoder, sample_rate),
            layout="mono",
            options=codec.encoder_options,
        )
        if codec.bit_rate is not None:
            self._stream.bit_rate = codec.bit_rate
        self._sample_rate = sample_rate
        self._samples_written = 0

    def write(self, samples: Audio) -> bytes:
        if samples.size == 0:
            return b""
        frame = av.AudioFrame.from_ndarray(clip_to_unit(samples)[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._sample_rate
        frame.time_base = Fraction(1, self._sample_rate)
        frame.pts = self._samples_written
        self._samples_written += samples.size
        self._container.mux(self._stream.encode(frame))
        return self._sink.drain()

    def close(self) -> bytes:
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return self._sink.drain()


def _nearest_supported_rate(encoder: str, sample_rate: int) -> int:
    """`sample_rate` if the encoder takes it, else the next higher rate it takes (libopus has no 22050 Hz)."""
    supported = av.codec.Codec(encoder, "w").audio_rates
    if not supported or sample_rate in supported:
        return sample_rate
    higher = [rate for rate in supported if rate > sample_rate]
    return min(higher) if higher else max(supported)


# Speed figures: bench/encode.py, 60 s of speech-like audio on one core.
_BACKENDS: dict[AudioFormat, _Backend] = {
    "mp3": _Lame(MP3_BIT_RATE_KBPS, MP3_QUALITY),
    "opus": _PyAV(
        "ogg",
        "libopus",
        32_000,
        # Ogg holds packets until a page is full (1 s by default); 200 ms pages keep the stream flowing
        # for about 4 % more bytes.
        muxer_options={"page_duration": "200000"},
        # Complexity 10 (the default) manages only about 140x: its SILK search and its signal analysis
        # (complexity 7 and up) cost the most. Complexity 6 with the voip application (which keeps speech in
        # SILK/hybrid mode without that analysis) about 175x, for a PESQ (wideband) of 3.99 instead of 4.11
        # on espeak speech. Without voip, complexity 6 falls back to CELT: PESQ 3.49.
        encoder_options={"application": "voip", "compression_level": "6"},
    ),
    "aac": _PyAV(
        # Raw AAC frames need ADTS headers to be playable without an MP4 container.
        "adts",
        "aac",
        64_000,
        # FFmpeg's default "twoloop" coder manages only about 26x real time on speech; "fast" about 200x.
        encoder_options={"aac_coder": "fast"},
    ),
    # No 8 KiB padding block: it only serves rewriting tags in place, which a stream never does.
    "flac": _PyAV("flac", "flac", None, muxer_options={"metadata_header_padding": "0"}),
    "wav": _Int16(wav_header=True),
    "pcm": _Int16(wav_header=False),
}
