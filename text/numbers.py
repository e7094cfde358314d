"""English number words: num2words spells the numbers, this module picks how each kind of number is read.

Every function takes the digits as written (ASCII, thousands commas allowed) and returns words without digits.
"""

from __future__ import annotations

from num2words import num2words

_MAX_SPELLED_DIGITS = 15
"""Integers longer than this (past the trillions) are read digit by digit: nobody says them as one number."""

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _spell(value: int, to: str = "cardinal") -> str:
    # num2words writes "one thousand, two hundred": the commas would become pauses and clause cuts downstream.
    return str(num2words(value, lang="en", to=to)).replace(",", "")


def digits(written: str) -> str:
    """Each digit on its own: "0451" is "zero four five one"."""
    return " ".join(_DIGIT_WORDS[int(digit)] for digit in written if digit.isdigit())


def cardinal(written: str) -> str:
    """ "1,234" is "one thousand two hundred and thirty-four"."""
    plain = written.replace(",", "")
    if len(plain.lstrip("0")) > _MAX_SPELLED_DIGITS:
        return digits(plain)
    return _spell(int(plain))


def ordinal(written: str) -> str:
    """ "21" is "twenty-first"."""
    plain = written.replace(",", "")
    if len(plain.lstrip("0")) > _MAX_SPELLED_DIGITS:
        return digits(plain)
    return _spell(int(plain), to="ordinal")


def decimal(written: str) -> str:
    """ "3.14" is "three point one four", ".5" is "point five"; the digits after the point are read one by one."""
    whole, _, fraction = written.partition(".")
    spoken_whole = cardinal(whole) if whole else ""
    if not fraction:
        return spoken_whole
    return f"{spoken_whole} point {digits(fraction)}".strip()


def is_year(written: str) -> bool:
    """Whether a bare integer is read as a year: four digits from 1100 to 2099, written without a comma."""
    return len(written) == 4 and written.isdigit() and 1100 <= int(written) <= 2099


def year(written: str) -> str:
    """ "1984" is "nineteen eighty-four", "2005" is "two thousand and five", "1905" is "nineteen oh-five"."""
    return _spell(int(written), to="year")


def number(written: str) -> str:
    """A bare number as written in running text: a year, an integer or a decimal."""
    if "." in written:
        return decimal(written)
    if len(written) > 1 and written.startswith("0"):
        return digits(written)  # an identifier such as 007 or 0451
    if is_year(written):
        return year(written)
    return cardinal(written)


def plural(words: str) -> str:
    """The plural of a spoken number, for decades and fractions: "nineteen ninety" is "nineteen nineties"."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith(("x", "s")):
        return words + "es"
    return words + "s"


def is_one(written: str) -> bool:
    """Whether a quantity takes the singular ("1 km", "1.0 kg"), which only exactly one does."""
    try:
        return float(written.replace(",", "")) == 1.0
    except ValueError:
        return False
