"""The espeak-ng engine really speaks: these tests run the real library on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.settings import Settings
from tasks.models import served_model
from workers.engines.base import (
    Audio,
    AudioPiece,
    ChunkRequest,
    EngineError,
    GenerationParams,
    run_to_completion,
)
from workers.engines.espeak import ESPEAK_SAMPLE_RATE, EspeakEngine
from workers.engines.factory import create_engine

SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs back home."
WORDS_PER_MINUTE = 175


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    engine = EspeakEngine(make_settings(espeak_words_per_minute=WORDS_PER_MINUTE))
    engine.load()
    return engine


def make_settings(**overrides: Any) -> Settings:
    """Defaults plus `overrides`, ignoring the environment and any .env file."""
    return Settings.model_construct(**overrides)


def speak(
    engine: EspeakEngine, text: str, reference: Path | None = None, params: GenerationParams | None = None
) -> Audio:
    request = ChunkRequest("only", text, reference, params or GenerationParams())
    return run_to_completion(engine, [request])["only"]


def seconds(audio: Audio) -> float:
    return len(audio) / ESPEAK_SAMPLE_RATE


def test_speaks_mono_float32_at_its_native_rate(engine: EspeakEngine) -> None:
    audio = speak(engine, SENTENCE)

    assert engine.sample_rate == 22050
    assert engine.device == "cpu"
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.02


def test_duration_follows_the_word_count_at_the_configured_rate(engine: EspeakEngine) -> None:
    short = speak(engine, "One two three four five.")
    words = " ".join(["word"] * 40) + "."
    long = speak(engine, words)

    expected = 40 / WORDS_PER_MINUTE * 60
    assert 0.5 * expected < seconds(long) < 2.0 * expected
    assert seconds(long) > 4 * seconds(short)


def test_is_deterministic(engine: EspeakEngine) -> None:
    first = speak(engine, SENTENCE)
    second = speak(engine, SENTENCE)

    np.testing.assert_array_equal(first, second)


def test_language_picks_the_voice(engine: EspeakEngine) -> None:
    text = "Bonjour, comment allez-vous aujourd'hui?"
    english = speak(engine, text)
    french = speak(engine, text, params=GenerationParams(language="fr"))
    french_region = speak(engine, text, params=GenerationParams(language="fr-FR"))

    assert len(english) != len(french) or not np.array_equal(english, french)
    np.testing.assert_array_equal(french, french_region)
    # Choosing another language leaves nothing behind for the next request.
    np.testing.assert_array_equal(speak(engine, text), english)


def test_bare_language_of_the_configured_voice_keeps_that_voice(engine: EspeakEngine) -> None:
    default = speak(engine, SENTENCE)
    assert np.array_equal(speak(engine, SENTENCE, params=GenerationParams(language="en")), default)
    british = speak(engine, SENTENCE, params=GenerationParams(language="en-GB"))
    assert not np.array_equal(british, default)


def test_unknown_language_is_refused(engine: EspeakEngine) -> None:
    with pytest.raises(EngineError, match="no voice for language 'xx-nowhere'"):
        engine.submit(ChunkRequest("x", SENTENCE, None, GenerationParams(language="xx-nowhere")))
    assert not engine.busy


def test_unknown_configured_voice_is_refused_at_load() -> None:
    with pytest.raises(EngineError, match="espeak_voice"):
        EspeakEngine(make_settings(espeak_voice="no-such-voice")).load()


def test_reference_clip_is_ignored(engine: EspeakEngine, tmp_path: Path) -> None:
    reference = tmp_path / "voice.wav"
    reference.write_bytes(b"not even audio")

    without = speak(engine, SENTENCE)
    with_reference = speak(engine, SENTENCE, reference)

    np.testing.assert_array_equal(without, with_reference)


def test_requests_in_flight_together_each_get_their_own_audio_first_chunks_first(engine: EspeakEngine) -> None:
    requests = [
        ChunkRequest("a1", SENTENCE, None, GenerationParams(), priority=1),
        ChunkRequest("b0", "Le renard brun saute par-dessus le chien.", None, GenerationParams(language="fr"), 0),
        ChunkRequest("c1", "A short one.", None, GenerationParams(), priority=1),
        ChunkRequest("d0", "Der schnelle braune Fuchs springt.", None, GenerationParams(language="de"), 0),
    ]
    serial = {request.id: speak(engine, request.text, params=request.params) for request in requests}
    for request in requests:
        engine.submit(request)
    order = []
    while engine.busy:
        for output in engine.step():
            assert isinstance(output, AudioPiece) and output.final
            np.testing.assert_array_equal(output.samples, serial[output.request_id])
            order.append(output.request_id)
    assert order == ["b0", "d0", "a1", "c1"]  # by priority (a chunk's index in its job), then first come


def test_a_cancelled_request_produces_nothing(engine: EspeakEngine) -> None:
    for request_id in ("kept", "dropped"):
        engine.submit(ChunkRequest(request_id, SENTENCE, None, GenerationParams()))
    engine.cancel("dropped")
    produced = []
    while engine.busy:
        produced += [output.request_id for output in engine.step()]
    assert produced == ["kept"]


def test_energy_sits_in_the_speech_band(engine: EspeakEngine) -> None:
    audio = speak(engine, SENTENCE).astype(np.float64)
    power = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(len(audio), d=1 / ESPEAK_SAMPLE_RATE)

    speech_band = power[(frequencies >= 100) & (frequencies <= 4000)].sum()
    assert speech_band / power.sum() > 0.8


def test_factory_builds_espeak() -> None:
    settings = make_settings(tts_engine="espeak")

    assert isinstance(create_engine(settings), EspeakEngine)
    assert served_model(settings) == create_engine(settings).name == "espeak"
