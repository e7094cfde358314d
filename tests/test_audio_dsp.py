"""Resampling, tempo, chunk joining and loudness."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.encode import speech_like
from workers.audio.join import ChunkJoiner, join_chunks
from workers.audio.loudness import normalize_loudness, to_int16
from workers.audio.piecewise import PiecewiseFilter
from workers.audio.resample import Resampler, resample
from workers.audio.tempo import TempoChanger, change_tempo
from workers.engines.base import Audio

RATE = 24_000


def tone(frequency: float, seconds: float, sample_rate: int = RATE, amplitude: float = 0.5) -> Audio:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    samples: Audio = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return samples


def dominant_frequency(samples: Audio, sample_rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * sample_rate / samples.size)


def rms(samples: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


# --- resample ---


def test_resample_keeps_pitch_and_scales_length() -> None:
    espeak_output = tone(440, 1.0, sample_rate=22_050)
    converted = resample(espeak_output, 22_050, RATE)
    assert converted.dtype == np.float32
    assert converted.size == RATE
    assert dominant_frequency(converted) == pytest.approx(440, rel=0.01)
    assert rms(converted) == pytest.approx(rms(espeak_output), rel=0.02)


def test_resample_at_equal_rates_is_the_input() -> None:
    samples = tone(440, 0.1)
    assert resample(samples, RATE, RATE) is samples


@pytest.mark.parametrize("length", [0, 1, 5, 30])
def test_resample_short_inputs(length: int) -> None:
    assert resample(np.ones(length, dtype=np.float32), 22_050, RATE).size == round(length * RATE / 22_050)


# --- tempo ---


def test_double_speed_halves_duration_and_keeps_pitch() -> None:
    original = tone(440, 2.0)
    faster = change_tempo(original, RATE, 2.0)
    assert faster.size == pytest.approx(original.size / 2, rel=0.05)
    assert dominant_frequency(faster) == pytest.approx(440, rel=0.05)


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.5, 4.0])
def test_tempo_scales_duration_and_keeps_pitch(speed: float) -> None:
    speech = speech_like(2.0)
    changed = change_tempo(speech, RATE, speed)
    assert changed.size == pytest.approx(speech.size / speed, rel=0.05)
    assert dominant_frequency(change_tempo(tone(440, 1.0), RATE, speed)) == pytest.approx(440, rel=0.05)
    # The speech is all still there: the same energy per second, not silence or a fragment.
    assert rms(changed) == pytest.approx(rms(speech), rel=0.25)


@pytest.mark.parametrize("speed", [0.0, 0.2, 4.01, 10.0, -1.0])
def test_tempo_out_of_range_raises(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        change_tempo(tone(440, 0.1), RATE, speed)


def test_unit_speed_is_the_input() -> None:
    samples = tone(440, 0.1)
    assert change_tempo(samples, RATE, 1.0) is samples


@pytest.mark.parametrize("length", [0, 1, 100, 1000])
def test_tempo_of_short_inputs(length: int) -> None:
    assert change_tempo(np.ones(length, dtype=np.float32), RATE, 2.0).size == round(length / 2)


# --- joining ---


def seam_jump(joined: Audio, seams: list[int], radius: int = 50) -> float:
    """The largest sample-to-sample step within `radius` samples of each seam position."""
    steps = np.abs(np.diff(joined))
    return max(float(steps[max(0, seam - radius) : seam + radius].max()) for seam in seams)


@pytest.mark.parametrize("pause_ms", [0.0, 150.0])
def test_dc_chunks_join_without_a_click(pause_ms: float) -> None:
    up, down = np.full(RATE, 0.5, dtype=np.float32), np.full(RATE, -0.5, dtype=np.float32)
    joined = join_chunks([up, down, up], RATE, pause_ms=pause_ms, crossfade_ms=10)
    assert np.abs(np.diff(joined)).max() < 0.01  # a plain cut would step by 1.0


@pytest.mark.parametrize("pause_ms", [0.0, 150.0])
def test_sine_chunks_join_without_a_click(pause_ms: float) -> None:
    first, second = tone(220, 0.5), tone(330, 0.5)[37:]  # the second starts mid-cycle
    natural_step = 0.5 * 2 * np.pi * 330 / RATE
    joined = join_chunks([first, second], RATE, pause_ms=pause_ms, crossfade_ms=10)
    assert np.abs(np.diff(joined)).max() < natural_step * 1.1


def test_length_is_chunks_plus_pauses() -> None:
    chunks = [tone(200, 0.3), tone(300, 0.2), tone(400, 0.4)]
    joined = join_chunks(chunks, RATE, pause_ms=100, crossfade_ms=10)
    assert joined.size == sum(chunk.size for chunk in chunks) + 2 * round(0.1 * RATE)


def test_without_pause_chunks_overlap_by_the_crossfade() -> None:
    chunks = [tone(200, 0.3), tone(300, 0.2), tone(400, 0.4)]
    joined = join_chunks(chunks, RATE, pause_ms=0, crossfade_ms=10)
    assert joined.size == sum(chunk.size for chunk in chunks) - 2 * round(0.01 * RATE)


def test_crossfade_keeps_the_loudness_of_uncorrelated_signals() -> None:
    rng = np.random.default_rng(0)
    first, second = (rng.normal(0, 0.1, RATE).astype(np.float32) for _ in range(2))
    fade = round(0.2 * RATE)
    joined = join_chunks([first, second], RATE, pause_ms=0, crossfade_ms=200)
    overlap = joined[first.size - fade : first.size]
    assert rms(overlap) == pytest.approx(0.1, rel=0.05)  # a linear crossfade would dip to about 0.08


def test_chunk_edges_fade_around_the_pause() -> None:
    chunk = np.full(RATE // 10, 0.5, dtype=np.float32)
    joined = join_chunks([chunk, chunk], RATE, pause_ms=50, crossfade_ms=10)
    fade, pause = round(0.01 * RATE), round(0.05 * RATE)
    assert abs(joined[chunk.size - 1]) < 0.01 and abs(joined[chunk.size + pause]) < 0.01
    assert np.all(joined[chunk.size : chunk.size + pause] == 0)
    assert joined[: chunk.size - fade] == pytest.approx(0.5)  # untouched away from the seam
    assert joined[0] == 0.5 and joined[-1] == 0.5  # the stream's own start and end are left as they are


def test_push_holds_back_only_the_fade() -> None:
    joiner = ChunkJoiner(RATE, pause_ms=100, crossfade_ms=10)
    fade = round(0.01 * RATE)
    assert joiner.push(tone(200, 0.5)).size == RATE // 2 - fade
    assert joiner.push(np.zeros(0, dtype=np.float32)).size == 0
    assert joiner.push(tone(200, 0.5)).size == RATE // 2 + round(0.1 * RATE)
    assert joiner.finish().size == fade


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    pause_ms=st.sampled_from([0.0, 20.0]),
    crossfade_ms=st.sampled_from([0.0, 5.0, 50.0]),
)
def test_streamed_join_equals_join_chunks(lengths: list[int], pause_ms: float, crossfade_ms: float) -> None:
    rng = np.random.default_rng(len(lengths))
    chunks = [rng.uniform(-0.5, 0.5, length).astype(np.float32) for length in lengths]
    joiner = ChunkJoiner(RATE, pause_ms, crossfade_ms)
    streamed = np.concatenate([joiner.push(chunk) for chunk in chunks] + [joiner.finish()])
    np.testing.assert_array_equal(streamed, join_chunks(chunks, RATE, pause_ms, crossfade_ms))
    assert streamed.dtype == np.float32
    assert np.all(np.isfinite(streamed))
    sounding = [length for length in lengths if length]
    # Equal-power gains have unit norm, so a sample mixing k chunks stays within sqrt(k) times their peak.
    assert np.abs(streamed).max(initial=0) <= 0.5 * np.sqrt(max(1, len(sounding))) + 1e-6
    fade = round(crossfade_ms * RATE / 1000)
    if pause_ms == 0:
        overlaps = sum(min(fade, a, b) for a, b in itertools.pairwise(sounding))
        assert streamed.size == sum(sounding) - overlaps
    else:
        pauses = round(pause_ms * RATE / 1000) * max(0, len(sounding) - 1)
        assert streamed.size == sum(sounding) + pauses


def test_negative_pause_or_fade_raises() -> None:
    with pytest.raises(ValueError):
        ChunkJoiner(RATE, pause_ms=-1, crossfade_ms=10)
    with pytest.raises(ValueError):
        ChunkJoiner(RATE, pause_ms=0, crossfade_ms=-1)


# --- loudness ---


def test_normalize_reaches_the_target_rms() -> None:
    quiet = speech_like(1.0) * 0.1
    normalized = normalize_loudness(quiet, target_dbfs=-20)
    assert 20 * np.log10(rms(normalized)) == pytest.approx(-20, abs=0.1)


def test_normalize_limits_the_peak() -> None:
    normalized = normalize_loudness(speech_like(1.0), target_dbfs=0)
    assert np.abs(normalized).max() == pytest.approx(0.99, abs=1e-6)


def test_silence_stays_silence() -> None:
    silence = np.zeros(1000, dtype=np.float32)
    np.testing.assert_array_equal(normalize_loudness(silence, -20), silence)
    assert normalize_loudness(np.zeros(0, dtype=np.float32), -20).size == 0


def test_to_int16_clips_and_zeroes_nan() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.7, -9.0, np.nan], dtype=np.float32)
    converted = to_int16(samples)
    assert converted.dtype == np.dtype("<i2")
    np.testing.assert_array_equal(converted, [0, 16384, -16384, 32767, -32767, 32767, -32767, 0])


def test_normalize_scales_loud_input_down_instead_of_clipping() -> None:
    loud = tone(220, 0.5, amplitude=1.5)
    normalized = normalize_loudness(loud, target_dbfs=-3)
    assert np.abs(normalized).max() == pytest.approx(0.99, abs=1e-6)
    np.testing.assert_allclose(normalized, loud * (0.99 / np.abs(loud).max()), atol=1e-6)  # not clipped


# --- the same filters fed piece by piece, as a streaming engine makes a chunk ---


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(2_400, 12_000), min_size=1, max_size=6),  # pieces of 0.1 s and more
    filter_=st.sampled_from(["resample", "tempo 0.5", "tempo 1.7"]),
)
def test_piecewise_filters_give_the_whole_calls_output(cuts: list[int], filter_: str) -> None:
    speech = speech_like(2.0, 22_050 if filter_ == "resample" else RATE)
    piecewise: PiecewiseFilter
    if filter_ == "resample":
        piecewise, whole = Resampler(22_050, RATE), resample(speech, 22_050, RATE)
    else:
        speed = float(filter_.split()[1])
        piecewise, whole = TempoChanger(RATE, speed), change_tempo(speech, RATE, speed)
    bounds = [0, *sorted(set(min(c, speech.size) for c in itertools.accumulate(cuts))), speech.size]
    out = np.concatenate([piecewise.push(speech[a:b]) for a, b in itertools.pairwise(bounds)] + [piecewise.finish()])
    assert out.size == whole.size  # exactly the length one call gives
    # The filters keep their state across pieces, so the seams are where nothing happens: the same samples.
    np.testing.assert_allclose(out, whole, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=4),
    splits=st.lists(st.integers(min_value=1, max_value=2999), max_size=3),
)
def test_a_chunk_pushed_in_pieces_joins_as_if_pushed_whole(lengths: list[int], splits: list[int]) -> None:
    rng = np.random.default_rng(sum(lengths))
    chunks = [rng.uniform(-0.5, 0.5, length).astype(np.float32) for length in lengths]
    joiner = ChunkJoiner(RATE, pause_ms=20, crossfade_ms=5)
    out = []
    fade = round(5 * RATE / 1000)
    for chunk in chunks:
        # Pieces at least as long as the crossfade, as an engine's are (a second of speech or more).
        cuts = [0]
        for cut in sorted(set(splits)):
            if cut - cuts[-1] >= fade and chunk.size - cut >= fade:
                cuts.append(cut)
        cuts.append(chunk.size)
        for index, (start, end) in enumerate(itertools.pairwise(cuts)):
            out.append(joiner.push(chunk[start:end], continues=index > 0))
    out.append(joiner.finish())
    np.testing.assert_array_equal(np.concatenate(out), join_chunks(chunks, RATE, 20, 5))
