"""Common English abbreviations spelled out: "Dr. Smith" is "Doctor Smith", "Elm Dr." is "Elm Drive", "e.g." is
"for example".

Where an abbreviation's period also ends the sentence ("apples, pears, etc. Then..."), the period stays after the
spoken word, so the chunker still sees the sentence end.
"""

from __future__ import annotations

import re
from enum import Enum


class _Kind(Enum):
    TITLE = "before a name; never ends a sentence"
    WORD = "may end a sentence"
    BEFORE_NUMBER = "only before a number: No. 5"
    TITLE_OR_PLACE = "a title before a name (Dr. Smith), else a place (Elm Dr.)"


_TABLE: dict[str, tuple[_Kind, str, str]] = {
    # stem: (kind, spoken, spoken as a place)
    "Mr": (_Kind.TITLE, "Mister", ""),
    "Mrs": (_Kind.TITLE, "Missus", ""),
    "Ms": (_Kind.TITLE, "Miz", ""),
    "Prof": (_Kind.TITLE, "Professor", ""),
    "Capt": (_Kind.TITLE, "Captain", ""),
    "Lt": (_Kind.TITLE, "Lieutenant", ""),
    "Sgt": (_Kind.TITLE, "Sergeant", ""),
    "Gov": (_Kind.TITLE, "Governor", ""),
    "Mt": (_Kind.TITLE, "Mount", ""),
    "Dr": (_Kind.TITLE_OR_PLACE, "Doctor", "Drive"),
    "St": (_Kind.TITLE_OR_PLACE, "Saint", "Street"),
    "Jr": (_Kind.WORD, "Junior", ""),
    "Sr": (_Kind.WORD, "Senior", ""),
    "Ave": (_Kind.WORD, "Avenue", ""),
    "Blvd": (_Kind.WORD, "Boulevard", ""),
    "Rd": (_Kind.WORD, "Road", ""),
    "Ltd": (_Kind.WORD, "Limited", ""),
    "Corp": (_Kind.WORD, "Corporation", ""),
    "Dept": (_Kind.WORD, "Department", ""),
    "approx": (_Kind.WORD, "approximately", ""),
    "etc": (_Kind.WORD, "et cetera", ""),
    "vs": (_Kind.TITLE, "versus", ""),
    "cf": (_Kind.TITLE, "compare", ""),
    "e.g": (_Kind.TITLE, "for example", ""),
    "i.e": (_Kind.TITLE, "that is", ""),
    "a.k.a": (_Kind.TITLE, "also known as", ""),
    "no": (_Kind.BEFORE_NUMBER, "number", ""),
    "nos": (_Kind.BEFORE_NUMBER, "numbers", ""),
    "p": (_Kind.BEFORE_NUMBER, "page", ""),
    "pp": (_Kind.BEFORE_NUMBER, "pages", ""),
    "vol": (_Kind.BEFORE_NUMBER, "volume", ""),
    "fig": (_Kind.BEFORE_NUMBER, "figure", ""),
    "ch": (_Kind.BEFORE_NUMBER, "chapter", ""),
}

ABBREVIATIONS = frozenset(stem.lower() for stem in _TABLE)
"""Every stem this module spells out (lowercase, without the final period)."""

_CAPITALIZED = {stem[0].upper() + stem[1:]: stem for stem in _TABLE if stem[0].islower()}
"""Lowercase stems written with a capital: "E.g." is "For example" at the start of a sentence."""

_STEMS = sorted([*_TABLE, *_CAPITALIZED], key=len, reverse=True)
ABBREVIATION = re.compile(
    rf"(?<![\w.])(?P<stem>{'|'.join(re.escape(stem) for stem in _STEMS)})\.(?=\s|$|[,;:!?)\]])"
    r"|(?<![\w.])(?P<versus>vs)(?=\s)"
)
_NEXT_WORD = re.compile(r"\s+(\S)")
_SENTENCE_FOLLOWS = re.compile(r"\s*$|\s+[\"'“‘(]*[A-Z]")  # noqa: RUF001  (curly quotes open sentences too)
_SENTENCE_STARTS = re.compile(r"(?:^|[.!?][\"')\]”’]*)\s*$")  # noqa: RUF001
_PREVIOUS_WORD = re.compile(r"(?:^|(?P<end>[.!?]\s+)|\s)(?P<word>\S+)\s+$")


def spell_out(match: re.Match[str]) -> str:
    if match["versus"]:
        return "versus"
    stem = match["stem"]
    text, end = match.string, match.end()
    kind, spoken, place = _TABLE[_CAPITALIZED.get(stem, stem)]
    if stem in _CAPITALIZED and _SENTENCE_STARTS.search(text, 0, match.start()):
        spoken = spoken[0].upper() + spoken[1:]
    if kind is _Kind.BEFORE_NUMBER:
        following = _NEXT_WORD.match(text, end)
        return spoken if following is not None and following[1].isdigit() else match[0]
    if kind is _Kind.TITLE_OR_PLACE and not _is_title(text, match.start(), end):
        kind, spoken = _Kind.WORD, place
    if kind is _Kind.WORD and sentence_follows(text, end):
        return spoken + "."
    return spoken


def sentence_follows(text: str, position: int) -> bool:
    """Whether a period just before `position` ends a sentence: the text ends there, or a capital follows."""
    return _SENTENCE_FOLLOWS.match(text, position) is not None


def _is_title(text: str, start: int, end: int) -> bool:
    """A title comes before a name, and after a word that is not itself part of a name (Elm Dr. is a place)."""
    following = _NEXT_WORD.match(text, end)
    if following is None or not following[1].isupper():
        return False
    previous = _PREVIOUS_WORD.search(text, 0, start)
    if previous is None or not previous["word"][0].isupper():
        return True
    starts_sentence = previous["end"] is not None or previous.start() == 0
    return starts_sentence
