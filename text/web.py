"""URLs and email addresses read the way people say them: "example dot com slash docs", "jane dot doe at example
dot org".

The scheme (`https://`) is dropped, as people drop it; digits are read one by one; symbols are named.
"""

from __future__ import annotations

import re

from text.numbers import digits

_TOP_LEVEL_DOMAINS = (
    "com|org|net|edu|gov|io|ai|dev|app|co|uk|us|ca|de|fr|eu|info|biz|me|tv|ly|gg|xyz|tech|cloud|site|online|blog"
)
_TRAILING = ".,;:!?)]}'\""

URL = re.compile(
    rf"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"]+"
    rf"|\b[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.(?:{_TOP_LEVEL_DOMAINS})\b(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")

_SYMBOL_WORDS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    ":": "colon",
    "?": "question mark",
    "=": "equals",
    "&": "and",
    "#": "hash",
    "@": "at",
    "~": "tilde",
    "+": "plus",
    "%": "percent",
}
_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|.", re.DOTALL)
_SCHEME = re.compile(r"^(?:https?|ftp)://", re.IGNORECASE)


def _say(address: str) -> str:
    words: list[str] = []
    for piece in _PIECES.findall(address):
        if piece.isdigit():
            words.append(digits(piece))
        elif piece.isalpha():
            words.append(piece)
        elif piece in _SYMBOL_WORDS:
            words.append(_SYMBOL_WORDS[piece])
    return " ".join(words)


def _split_trailing(match: re.Match[str]) -> tuple[str, str]:
    """The address and the sentence punctuation after it ("see example.com." ends a sentence, not the URL)."""
    address = match[0]
    stripped = address.rstrip(_TRAILING)
    return stripped, address[len(stripped) :]


def say_url(match: re.Match[str]) -> str:
    address, trailing = _split_trailing(match)
    address = _SCHEME.sub("", address).rstrip("/")
    if address.lower().startswith("www."):
        return f"w w w dot {_say(address[4:])}{trailing}"
    return _say(address) + trailing


def say_email(match: re.Match[str]) -> str:
    address, trailing = _split_trailing(match)
    return _say(address) + trailing
