"""Streaming encoders: float samples in, a valid file of the response format out, a piece at a time.

One `StreamEncoder` serves one response. Compressed formats go through a PyAV (FFmpeg) muxer writing into
memory; wav and pcm are 16-bit samples with (wav) a 44-byte header, written directly.
"""

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Protocol

import av
import numpy as np

from workers.audio.formats import AudioFormat
from workers.audio.loudness import clip_to_unit, to_int16
from workers.engines.base import Audio


@dataclass(frozen=True)
class _Codec:
    muxer: str
    encoder: Literal["libmp3lame", "libopus", "aac", "flac"]
    bit_rate: int | None
    muxer_options: dict[str, str] = field(default_factory=dict)
    encoder_options: dict[str, str] = field(default_factory=dict)


# Speed figures: bench/encode.py, 60 s of speech-like audio on one core.
_CODECS: dict[AudioFormat, _Codec] = {
    "mp3": _Codec(
        "mp3",
        "libmp3lame",
        64_000,
        # The Xing header and ID3 tag are patched in at the end of a file, which a sent stream cannot be.
        muxer_options={"write_xing": "0", "id3v2_version": "0"},
        # LAME -q 5 ("good speed, reasonable quality") instead of its default 3: about 1.15x faster.
        encoder_options={"compression_level": "5"},
    ),
    "opus": _Codec(
        "ogg",
        "libopus",
        32_000,
        # Ogg holds packets until a page is full (1 s by default); 200 ms pages keep the stream flowing
        # for about 4 % more bytes.
        muxer_options={"page_duration": "200000"},
    ),
    "aac": _Codec(
        # Raw AAC frames need ADTS headers to be playable without an MP4 container.
        "adts",
        "aac",
        64_000,
        # FFmpeg's default "twoloop" coder manages only about 26x real time on speech; "fast" about 200x.
        encoder_options={"aac_coder": "fast"},
    ),
    # No 8 KiB padding block: it only serves rewriting tags in place, which a stream never does.
    "flac": _Codec("flac", "flac", None, muxer_options={"metadata_header_padding": "0"}),
}


class _Encoder(Protocol):
    def write(self, samples: Audio) -> bytes: ...

    def close(self) -> bytes: ...


class StreamEncoder:
    """Encodes one response incrementally: the bytes of every `write` and of `close`, joined, are the file."""

    def __init__(self, fmt: AudioFormat, sample_rate: int) -> None:
        self._encoder: _Encoder
        if fmt == "wav":
            self._encoder = _Int16Encoder(header=wav_stream_header(sample_rate))
        elif fmt == "pcm":
            self._encoder = _Int16Encoder(header=b"")
        else:
            self._encoder = _CodecEncoder(_CODECS[fmt], sample_rate)
        self._closed = False

    def write(self, samples: Audio) -> bytes:
        """Encodes more samples; returns the bytes this produced (possibly none while the codec buffers)."""
        if self._closed:
            raise ValueError("write to a closed StreamEncoder")
        return self._encoder.write(samples)

    def close(self) -> bytes:
        """Flushes the codec; returns the last bytes of the file. Closing again returns nothing."""
        if self._closed:
            return b""
        self._closed = True
        return self._encoder.close()


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


class _Int16Encoder:
    def __init__(self, header: bytes) -> None:
        self._unsent_header = header

    def write(self, samples: Audio) -> bytes:
        out = self._unsent_header + to_int16(samples).tobytes()
        self._unsent_header = b""
        return out

    def close(self) -> bytes:
        out, self._unsent_header = self._unsent_header, b""
        return out


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


class _CodecEncoder:
    def __init__(self, codec: _Codec, sample_rate: int) -> None:
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
