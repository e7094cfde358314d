"""Which languages the served engine speaks, so that a request naming another is refused when it is submitted
instead of failing in the worker.

A language is a BCP 47-ish tag (`fr`, `pt-BR`, `en_US`): the engines decide by its primary subtag, compared without
regard to ASCII case, so that is what is checked here, with one regular expression that the API also publishes in
its OpenAPI document (ECMA-262 syntax that Python's `re` reads the same way).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from core.language import subtags
from core.settings import Settings

# chatterbox.mtl_tts.SUPPORTED_LANGUAGES of 0.1.7, kept here so no torch import is needed to check a request.
# tests/test_languages.py compares this copy with the installed package.
MULTILINGUAL_LANGUAGES = frozenset(
    {"ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja"}
    | {"ko", "ms", "nl", "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh"}
)
ENGLISH_ONLY = frozenset({"en"})


def primary_subtag(language: str) -> str:
    return subtags(language)[0]


def served_languages(settings: Settings) -> frozenset[str]:
    """The primary subtags the configured engine speaks."""
    if settings.tts_engine == "espeak":
        return espeak_languages()
    if settings.chatterbox_variant == "multilingual":
        return MULTILINGUAL_LANGUAGES
    return ENGLISH_ONLY


@cache
def espeak_languages() -> frozenset[str]:
    """The primary subtags of every voice in espeak-ng's data (its `language` lines): the tags it can select."""
    import espeakng_loader

    found: set[str] = set()
    for voice_file in (Path(espeakng_loader.get_data_path()) / "lang").rglob("*"):
        if voice_file.is_file():
            for line in voice_file.read_text(errors="replace").splitlines():
                if line.startswith("language "):
                    found.add(primary_subtag(line.split()[1]))
    return frozenset(found)


def language_pattern(languages: frozenset[str]) -> str:
    """A tag whose primary subtag is one of `languages` (any ASCII case), then anything after a `-` or `_`."""
    primaries = "|".join("".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in tag) for tag in sorted(languages))
    return rf"^(?:{primaries})(?:[-_][\s\S]*)?$"


@cache
def _compiled(languages: frozenset[str]) -> re.Pattern[str]:
    return re.compile(language_pattern(languages))


def speaks(languages: frozenset[str], language: str) -> bool:
    return _compiled(languages).fullmatch(language) is not None
