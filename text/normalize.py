"""Text normalisation in front of the chunker: what the written text means, in the words a reader would say.

English is normalised (text/english.py); text in any other language is left as it is, since the rules are
English ones. Bracketed tags pass through untouched.
"""

from __future__ import annotations

from core.language import subtags
from text.english import normalize_english
from text.tags import BRACKET_TAG

_DAY_FIRST_REGIONS = frozenset({"gb", "uk", "ie", "au", "nz", "in", "za"})
"""English-speaking regions that write the day before the month (01/12/2026 is the first of December)."""


def normalizes(language: str) -> bool:
    """Whether text in `language` (a tag such as `en`, `en-GB` or `fr`) is normalised."""
    return subtags(language)[0] == "en"


def normalize(text: str, language: str) -> str:
    """`text` as it should be spoken in `language`: unchanged unless the language is English."""
    if not normalizes(language):
        return text
    region = subtags(language)[1:2]
    day_first = bool(region) and region[0] in _DAY_FIRST_REGIONS
    pieces: list[str] = []
    start = 0
    for tag in BRACKET_TAG.finditer(text):
        pieces += [normalize_english(text[start : tag.start()], day_first=day_first), tag[0]]
        start = tag.end()
    pieces.append(normalize_english(text[start:], day_first=day_first))
    return "".join(pieces)
