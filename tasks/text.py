"""What counts as text to speak: at least one letter or digit. Whitespace, punctuation, symbols and control
characters alone give an engine nothing to say (espeak answers "...!?" with 10 ms of silence)."""

from __future__ import annotations

import unicodedata

SPEAKABLE_PATTERN = r"[\p{L}\p{N}]"
"""The same rule as a JSON Schema pattern (Unicode property escapes), for the OpenAPI document. A client whose regex
engine has newer Unicode tables than this Python's may take a character assigned since for a letter that the
server does not know (a request of nothing else is then refused)."""


def has_speakable_text(text: str) -> bool:
    return any(unicodedata.category(character)[0] in "LN" for character in text)
