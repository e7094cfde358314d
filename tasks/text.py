"""What counts as text to speak: at least one letter or digit. Whitespace, punctuation, symbols and control
characters alone give an engine nothing to say (espeak answers "...!?" with 10 ms of silence)."""

from __future__ import annotations

import unicodedata

SPEAKABLE_PATTERN = r"[\p{L}\p{N}]"
"""The same rule as a JSON Schema pattern (Unicode property escapes), for the OpenAPI document."""


def has_speakable_text(text: str) -> bool:
    return any(unicodedata.category(character)[0] in "LN" for character in text)
