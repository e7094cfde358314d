"""The languages checked at submit are the ones the engines speak, and every pattern the OpenAPI document publishes
means what the server checks."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import Settings
from tasks.languages import (
    ENGLISH_ONLY,
    MULTILINGUAL_LANGUAGES,
    espeak_languages,
    language_pattern,
    served_languages,
    speaks,
)
from tasks.models import model_pattern, resolve_model
from tasks.text import SPEAKABLE_PATTERN, has_speakable_text
from voices.registry import VOICE_NAME_PATTERN
from workers.engines.base import ChunkRequest, EngineError, GenerationParams, run_to_completion
from workers.engines.espeak import EspeakEngine

NOT_LANGUAGES = ["zz", "xx-fr", "q", "", "-en", "en\n", "ｆｒ", "\u212aa", "frr", "e"]  # noqa: RUF001  (fullwidth, Kelvin)


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    espeak = EspeakEngine(Settings())
    espeak.load()
    return espeak


def test_espeak_speaks_every_language_checked_at_submit(engine: EspeakEngine) -> None:
    languages = espeak_languages()
    assert {"en", "fr", "pt", "de", "zh", "cmn", "ja"} <= languages
    requests = [ChunkRequest(language, "1", None, GenerationParams(language=language)) for language in languages]
    for language, audio in run_to_completion(engine, requests).items():
        assert len(audio) > 0, language


@pytest.mark.parametrize("language", ["zz", "xx-fr", "q", "frr"])
def test_espeak_refuses_what_the_check_refuses(engine: EspeakEngine, language: str) -> None:
    assert not speaks(espeak_languages(), language)
    with pytest.raises(EngineError):
        engine.submit(ChunkRequest(language, "1", None, GenerationParams(language=language)))


@pytest.mark.parametrize("language", ["pt-BR", "PT_br", "en-US", "en_us", "fr-", "zh-yue", "chr-US-Qaaa-x-west"])
def test_tags_are_judged_by_their_primary_subtag_in_any_ascii_case(language: str) -> None:
    assert speaks(espeak_languages(), language)


@pytest.mark.parametrize("language", NOT_LANGUAGES)
def test_other_tags_are_refused(language: str) -> None:
    assert not speaks(espeak_languages(), language)


def test_the_multilingual_languages_are_the_installed_chatterboxs() -> None:
    # Read, not imported: importing chatterbox loads torch.
    source = Path(str(importlib.metadata.distribution("chatterbox-tts").locate_file("chatterbox/mtl_tts.py")))
    module = ast.parse(source.read_text())
    languages = next(
        ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == "SUPPORTED_LANGUAGES" for target in node.targets)
    )
    assert set(languages) == MULTILINGUAL_LANGUAGES


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"tts_engine": "chatterbox", "chatterbox_variant": "turbo"}, ENGLISH_ONLY),
        ({"tts_engine": "chatterbox", "chatterbox_variant": "standard"}, ENGLISH_ONLY),
        ({"tts_engine": "chatterbox", "chatterbox_variant": "multilingual"}, MULTILINGUAL_LANGUAGES),
    ],
)
def test_chatterbox_variants_speak_their_languages(overrides: dict[str, str], expected: frozenset[str]) -> None:
    assert served_languages(Settings(**overrides)) == expected  # type: ignore[arg-type]


_tags = st.one_of(
    st.text(max_size=12),
    st.builds("".join, st.lists(st.sampled_from(["en", "EN", "pt", "Pt", "-", "_", "br", "\n", "x", "zz"]))),
)


@given(_tags)
def test_the_published_language_pattern_means_what_the_check_does(language: str) -> None:
    languages = espeak_languages()
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": language_pattern(languages)})
    assert validator.is_valid(language) == speaks(languages, language)


# Characters that Python's Unicode tables (14.0 in 3.11) call unassigned are left out, and surrogates as by default:
# a regex engine with newer tables, as jsonschema_rs's is, knows some of them as letters (U+31350, a CJK ideograph
# of Unicode 15, failed CI once).
@given(st.text(st.characters(exclude_categories=["Cn", "Cs"]), max_size=8))
def test_the_published_speakable_pattern_means_what_the_check_does(text: str) -> None:
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": SPEAKABLE_PATTERN})
    assert validator.is_valid(text) == has_speakable_text(text)


@pytest.mark.parametrize(
    ("text", "speakable"),
    [
        ("...!?", False),
        (" \t\u3000", False),
        ("\u0000", False),
        ("¡¿", False),
        ("5", True),
        ("今日", True),
        ("a.", True),
    ],
)
def test_speakable_text_needs_a_letter_or_a_digit(text: str, speakable: bool) -> None:
    assert has_speakable_text(text) is speakable


@given(
    st.one_of(st.text(max_size=20), st.sampled_from(["tts-1", "tts-1-hd", "gpt-4o-mini-tts-2025", "espeak", "tts-1x"]))
)
def test_the_published_model_pattern_means_what_the_api_accepts(model: str) -> None:
    settings = Settings()
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": model_pattern(settings)})
    assert validator.is_valid(model) == (resolve_model(model, settings) is not None)


@given(st.one_of(st.text(max_size=70), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,70}", fullmatch=True)))
def test_the_published_voice_name_pattern_means_what_uploads_accept(name: str) -> None:
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": VOICE_NAME_PATTERN})
    assert validator.is_valid(name) == (re.fullmatch(VOICE_NAME_PATTERN, name) is not None)
