"""Streaming encoders: every format decodes back (with PyAV) to what went in, in one go or piecewise."""

import io
import struct
from dataclasses import dataclass
from typing import get_args

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.encode import speech_like
from tasks.spec import CONTENT_TYPES, AudioFormat
from workers.audio.encoder import StreamEncoder, encode
from workers.audio.loudness import to_int16
from workers.engines.base import Audio

RATE = 24_000
ALL_FORMATS: tuple[AudioFormat, ...] = get_args(AudioFormat)
COMPRESSED: tuple[AudioFormat, ...] = ("mp3", "opus", "aac", "flac")
# Decoder codec (by descriptor name) and the rate each format decodes at: FFmpeg decodes Opus at 48 kHz
# whatever rate went in, as the Ogg Opus spec says.
EXPECTED_CODEC = {
    "mp3": "mp3",
    "opus": "opus",
    "aac": "aac",
    "flac": "flac",
    "wav": "pcm_s16le",
    "pcm": "pcm_s16le",
}
EXPECTED_RATE = {"mp3": RATE, "opus": 48_000, "aac": RATE, "flac": RATE, "wav": RATE, "pcm": RATE}
# Lossy codecs pad with priming and end-of-frame samples that MP3 and ADTS have no way to trim (Ogg does).
DURATION_TOLERANCE_S = 0.1


@dataclass
class Decoded:
    codec_id: int
    sample_rate: int
    channels: int
    samples: Audio

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


def decode(data: bytes, fmt: AudioFormat) -> Decoded:
    raw_format: str | None = None
    raw_options: dict[str, str] | None = None
    if fmt == "pcm":  # no header, so the demuxer is told what it is
        raw_format, raw_options = "s16le", {"sample_rate": str(RATE), "ch_layout": "mono"}
    with av.open(io.BytesIO(data), "r", format=raw_format, options=raw_options) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().astype(np.float32).reshape(-1) for frame in container.decode(stream)]
        return Decoded(
            codec_id=stream.codec_context.codec.id,
            sample_rate=stream.codec_context.sample_rate,
            channels=stream.codec_context.channels,
            samples=np.concatenate(frames),
        )


def write_in_pieces(samples: Audio, fmt: AudioFormat, sizes: list[int]) -> list[bytes]:
    """Everything a StreamEncoder returns, writing `samples` in pieces of `sizes` (repeated) then closing."""
    encoder = StreamEncoder(fmt, RATE)
    pieces, start, index = [], 0, 0
    while start < samples.size:
        size = sizes[index % len(sizes)]
        pieces.append(encoder.write(samples[start : start + size]))
        start += size
        index += 1
    pieces.append(encoder.close())
    return pieces


def test_every_format_has_its_content_type() -> None:
    assert CONTENT_TYPES == {
        "mp3": "audio/mpeg",
        "opus": "audio/opus",
        "aac": "audio/aac",
        "flac": "audio/flac",
        "wav": "audio/wav",
        "pcm": "audio/pcm",
    }


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_one_shot_encode_decodes_to_mono_audio_of_the_same_length(fmt: AudioFormat) -> None:
    samples = speech_like(2.0)
    decoded = decode(encode(samples, RATE, fmt), fmt)
    assert decoded.codec_id == av.codec.Codec(EXPECTED_CODEC[fmt], "r").id
    assert decoded.sample_rate == EXPECTED_RATE[fmt]
    assert decoded.channels == 1
    assert decoded.seconds == pytest.approx(2.0, abs=DURATION_TOLERANCE_S)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_irregular_writes_give_the_same_file_as_one_shot(fmt: AudioFormat) -> None:
    samples = speech_like(3.0)
    one_shot = encode(samples, RATE, fmt)
    pieces = write_in_pieces(samples, fmt, sizes=[0, 1, 7, 1000, 0, 100_000, 3, 959, 2048])
    streamed = b"".join(pieces)
    if fmt == "opus":
        # Each Ogg stream gets a random serial number, so only the decoded audio can match.
        np.testing.assert_array_equal(decode(streamed, fmt).samples, decode(one_shot, fmt).samples)
    else:
        assert streamed == one_shot


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_bytes_flow_before_close(fmt: AudioFormat) -> None:
    pieces = write_in_pieces(speech_like(2.0), fmt, sizes=[RATE // 2])
    assert sum(len(piece) for piece in pieces[:-1]) > 0.8 * sum(len(piece) for piece in pieces)


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_a_rate_the_codec_lacks_is_resampled_inside_the_encoder(fmt: AudioFormat) -> None:
    decoded = decode(encode(speech_like(1.0, sample_rate=22_050), 22_050, fmt), fmt)
    assert decoded.seconds == pytest.approx(1.0, abs=DURATION_TOLERANCE_S)
    assert decoded.sample_rate == (48_000 if fmt == "opus" else 22_050)


def test_wav_stream_header() -> None:
    samples = speech_like(0.5)
    data = encode(samples, RATE, "wav")
    fields = struct.unpack("<4sI4s4sIHHIIHH4sI", data[:44])
    assert fields == (
        b"RIFF",
        0xFFFFFFFF,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        RATE,
        2 * RATE,
        2,
        16,
        b"data",
        0xFFFFFFFF,
    )
    assert data[44:] == to_int16(samples).tobytes()
    assert decode(data, "wav").samples.size == samples.size


def test_pcm_is_headerless_int16_little_endian() -> None:
    samples = speech_like(0.5)
    data = encode(samples, RATE, "pcm")
    assert len(data) == 2 * samples.size
    np.testing.assert_array_equal(np.frombuffer(data, dtype="<i2"), to_int16(samples))


def test_mp3_is_a_plain_frame_stream_at_64_kbps() -> None:
    """No ID3 tag and no Xing/Info/LAME header: those are patched in at the end of a file, never sent."""
    data = encode(speech_like(2.0), RATE, "mp3")
    assert data[0] == 0xFF and data[1] & 0xE0 == 0xE0  # frame sync
    assert not data.startswith(b"ID3")
    first_frame = data[:200]  # 64 kbps at 24 kHz: 192-byte frames
    assert not any(tag in first_frame for tag in (b"Xing", b"Info", b"LAME"))
    with av.open(io.BytesIO(data), "r") as container:
        assert container.streams.audio[0].codec_context.bit_rate == 64_000


def test_out_of_range_samples_clip_instead_of_wrapping() -> None:
    samples = np.array([2.0, -2.0, 1.0, -1.0, 1.5, np.nan, np.inf, -np.inf], dtype=np.float32)
    pcm = np.frombuffer(encode(samples, RATE, "pcm"), dtype="<i2")
    np.testing.assert_array_equal(pcm, [32767, -32767, 32767, -32767, 32767, 0, 32767, -32767])


@pytest.mark.parametrize("fmt", COMPRESSED)
def test_compressed_formats_clip_loud_input_too(fmt: AudioFormat) -> None:
    tone = np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE).astype(np.float32)
    decoded = decode(encode(3 * tone, RATE, fmt), fmt).samples
    if fmt == "flac":
        decoded /= 32768  # FLAC decodes to integers
    # Clipped, the tone becomes nearly a square wave; wrapped-around integers would swing the other way.
    assert np.max(np.abs(decoded)) < 1.3
    assert np.mean(np.abs(decoded[RATE // 4 : RATE // 2])) > 0.7


def test_zero_sample_writes_and_double_close() -> None:
    encoder = StreamEncoder("mp3", RATE)
    assert encoder.write(np.zeros(0, dtype=np.float32)) == b""
    encoder.write(speech_like(0.5))
    assert encoder.close() != b""
    assert encoder.close() == b""
    with pytest.raises(ValueError, match="closed"):
        encoder.write(speech_like(0.1))


@settings(max_examples=20, deadline=None)
@given(
    fmt=st.sampled_from(["mp3", "aac", "flac", "wav", "pcm"]),
    sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=8).filter(any),
)
def test_any_write_sizes_give_the_one_shot_file(fmt: AudioFormat, sizes: list[int]) -> None:
    samples = speech_like(0.5)
    assert b"".join(write_in_pieces(samples, fmt, sizes)) == encode(samples, RATE, fmt)
