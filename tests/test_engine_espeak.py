"""The espeak-ng engine really speaks: these tests run the real library on the CPU."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.settings import Settings
from workers.engines.base import Audio, EngineError, GenerationParams
from workers.engines.espeak import ESPEAK_SAMPLE_RATE, EspeakEngine
from workers.engines.factory import create_engine, model_name

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


def seconds(audio: Audio) -> float:
    return len(audio) / ESPEAK_SAMPLE_RATE


def test_speaks_mono_float32_at_its_native_rate(engine: EspeakEngine) -> None:
    audio = engine.synthesize(SENTENCE, None, GenerationParams())

    assert engine.sample_rate == 22050
    assert engine.device == "cpu"
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.02


def test_duration_follows_the_word_count_at_the_configured_rate(engine: EspeakEngine) -> None:
    short = engine.synthesize("One two three four five.", None, GenerationParams())
    words = " ".join(["word"] * 40) + "."
    long = engine.synthesize(words, None, GenerationParams())

    expected = 40 / WORDS_PER_MINUTE * 60
    assert 0.5 * expected < seconds(long) < 2.0 * expected
    assert seconds(long) > 4 * seconds(short)


def test_is_deterministic(engine: EspeakEngine) -> None:
    first = engine.synthesize(SENTENCE, None, GenerationParams())
    second = engine.synthesize(SENTENCE, None, GenerationParams())

    np.testing.assert_array_equal(first, second)


def test_language_picks_the_voice(engine: EspeakEngine) -> None:
    text = "Bonjour, comment allez-vous aujourd'hui?"
    english = engine.synthesize(text, None, GenerationParams())
    french = engine.synthesize(text, None, GenerationParams(language="fr"))
    french_region = engine.synthesize(text, None, GenerationParams(language="fr-FR"))

    assert len(english) != len(french) or not np.array_equal(english, french)
    np.testing.assert_array_equal(french, french_region)
    # Choosing another language leaves nothing behind for the next request.
    np.testing.assert_array_equal(engine.synthesize(text, None, GenerationParams()), english)


def test_bare_language_of_the_configured_voice_keeps_that_voice(engine: EspeakEngine) -> None:
    default = engine.synthesize(SENTENCE, None, GenerationParams())
    assert np.array_equal(engine.synthesize(SENTENCE, None, GenerationParams(language="en")), default)
    british = engine.synthesize(SENTENCE, None, GenerationParams(language="en-GB"))
    assert not np.array_equal(british, default)


def test_unknown_language_is_refused(engine: EspeakEngine) -> None:
    with pytest.raises(EngineError, match="no voice for language 'xx-nowhere'"):
        engine.synthesize(SENTENCE, None, GenerationParams(language="xx-nowhere"))


def test_unknown_configured_voice_is_refused_at_load() -> None:
    with pytest.raises(EngineError, match="espeak_voice"):
        EspeakEngine(make_settings(espeak_voice="no-such-voice")).load()


def test_reference_clip_is_ignored(engine: EspeakEngine, tmp_path: Path) -> None:
    reference = tmp_path / "voice.wav"
    reference.write_bytes(b"not even audio")

    without = engine.synthesize(SENTENCE, None, GenerationParams())
    with_reference = engine.synthesize(SENTENCE, reference, GenerationParams())

    np.testing.assert_array_equal(without, with_reference)


def test_concurrent_calls_get_the_serial_results(engine: EspeakEngine) -> None:
    requests = [
        (SENTENCE, GenerationParams()),
        ("Le renard brun saute par-dessus le chien paresseux.", GenerationParams(language="fr")),
        ("Der schnelle braune Fuchs springt über den faulen Hund.", GenerationParams(language="de")),
        ("A short one.", GenerationParams()),
    ]
    serial = [engine.synthesize(text, None, params) for text, params in requests]
    rounds = 5
    start = threading.Barrier(len(requests))
    results: dict[int, list[Audio]] = {index: [] for index in range(len(requests))}

    def speak(index: int) -> None:
        text, params = requests[index]
        start.wait()
        for _ in range(rounds):
            results[index].append(engine.synthesize(text, None, params))

    threads = [threading.Thread(target=speak, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for index, expected in enumerate(serial):
        assert len(results[index]) == rounds
        for audio in results[index]:
            np.testing.assert_array_equal(audio, expected)


def test_energy_sits_in_the_speech_band(engine: EspeakEngine) -> None:
    audio = engine.synthesize(SENTENCE, None, GenerationParams()).astype(np.float64)
    power = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(len(audio), d=1 / ESPEAK_SAMPLE_RATE)

    speech_band = power[(frequencies >= 100) & (frequencies <= 4000)].sum()
    assert speech_band / power.sum() > 0.8


def test_factory_builds_espeak() -> None:
    settings = make_settings(tts_engine="espeak")

    assert isinstance(create_engine(settings), EspeakEngine)
    assert model_name(settings) == "espeak"
