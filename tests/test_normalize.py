"""The text normaliser: what each kind of token is read as, and properties over generated text."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text.abbreviations import ABBREVIATIONS
from text.normalize import normalize


def en(text: str) -> str:
    return normalize(text, "en")


def test_the_issue_sentence_reads_as_a_person_would_say_it() -> None:
    assert en("Call 555-1234 by 12/01/2026, costs $3.50, see https://example.com") == (
        "Call five five five, one two three four by December first, twenty twenty-six, costs three dollars and "
        "fifty cents, see example dot com"
    )


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("7 cats", "seven cats"),
        ("1,234 people", "one thousand two hundred and thirty-four people"),
        ("12345678 rows", "twelve million three hundred and forty-five thousand six hundred and seventy-eight rows"),
        ("the 21st and 2nd", "the twenty-first and second"),
        ("pi is 3.14", "pi is three point one four"),
        ("about .5 left", "about point five left"),
        ("it fell to -5 today", "it fell to minus five today"),
        ("pages 10-20", "pages ten to twenty"),
        ("from 1990–2000", "from nineteen ninety to two thousand"),  # noqa: RUF001  (an en dash range)
        ("in 1984", "in nineteen eighty-four"),
        ("in 2005", "in two thousand and five"),
        ("the 1990s and 80s", "the nineteen nineties and eighties"),
        ("agent 007", "agent zero zero seven"),
        ("1/2 and 3/4 and 2/3", "one half and three quarters and two thirds"),
        ("version 1.2.3", "version one point two point three"),
        ("an MP3 and B2B", "an MP three and B two B"),
        ("a 25 digit 1234567890123456789012345", "a twenty-five digit " + "one two three four five six seven eight "
         "nine zero " * 2 + "one two three four five"),
    ],
)  # fmt: skip
def test_numbers(written: str, spoken: str) -> None:
    assert en(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("$3.50", "three dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("$1,000,000", "one million dollars"),
        ("€20", "twenty euros"),
        ("£1.2m", "one point two million pounds"),
        ("£3.01", "three pounds and one penny"),
        ("$5 billion", "five billion dollars"),
        ("$5k", "five thousand dollars"),
        ("¥500", "five hundred yen"),
        ("45%", "forty-five percent"),
        ("3.5 %", "three point five percent"),
        ("5-10%", "five to ten percent"),
    ],
)
def test_money_and_percentages(written: str, spoken: str) -> None:
    assert en(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("5 km", "five kilometers"),
        ("1 km", "one kilometer"),
        ("10kg", "ten kilograms"),
        ("20°C", "twenty degrees Celsius"),
        ("60 mph", "sixty miles per hour"),
        ("16 GB", "sixteen gigabytes"),
        ("100W", "one hundred watts"),
        ("Route 66 W", "Route sixty-six W"),  # a spaced single letter is not taken for a unit
    ],
)
def test_units(written: str, spoken: str) -> None:
    assert en(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("12/01/2026", "December first, twenty twenty-six"),
        ("25/12/2026", "December twenty-fifth, twenty twenty-six"),  # only one reading is a date
        ("2026-12-01", "December first, twenty twenty-six"),
        ("April 3, 2026", "April third, twenty twenty-six"),
        ("Jan. 3rd", "January third"),
        ("5th of May 2026", "May fifth, twenty twenty-six"),
        ("3:30 pm", "three thirty P M"),
        ("at 9:05.", "at nine oh five."),
        ("at 5 a.m. Then", "at five A M. Then"),  # the period of "a.m." also ended the sentence
        ("at 5am sharp", "at five A M sharp"),
        ("15:00", "fifteen hundred"),
        ("at 3:00", "at three o'clock"),
        ("25:99", "twenty-five:ninety-nine"),  # not a time
    ],
)
def test_dates_and_times(written: str, spoken: str) -> None:
    assert en(written) == spoken


def test_british_english_reads_dates_day_first() -> None:
    assert normalize("12/01/2026", "en-GB") == "the twelfth of January twenty twenty-six"
    assert normalize("2026-12-01", "en_gb") == "the first of December twenty twenty-six"


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("555-1234", "five five five, one two three four"),
        ("(555) 123-4567", "five five five, one two three, four five six seven"),
        ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
        ("1-800-555-1234", "one, eight zero zero, five five five, one two three four"),
        ("07700 900123", "zero seven seven zero zero, nine zero zero one two three"),
        ("see https://example.com/docs.", "see example dot com slash docs."),
        ("www.example.co.uk/page-2", "w w w dot example dot co dot uk slash page dash two"),
        ("github.com/resemble-ai", "github dot com slash resemble dash ai"),
        ("mail jane.doe@example.org.", "mail jane dot doe at example dot org."),
    ],
)
def test_phone_numbers_urls_and_email(written: str, spoken: str) -> None:
    assert en(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Dr. Smith is here", "Doctor Smith is here"),
        ("Call Dr. Smith", "Call Doctor Smith"),
        ("on Elm Dr. near", "on Elm Drive near"),
        ("I love St. Louis", "I love Saint Louis"),
        ("on Main St. It is", "on Main Street. It is"),
        ("fruit, e.g., apples", "fruit, for example, apples"),
        ("E.g. this", "For example this"),
        ("red vs. blue and cats vs dogs", "red versus blue and cats versus dogs"),
        ("Mr. and Mrs. Jones", "Mister and Missus Jones"),
        ("apples, pears, etc. Then", "apples, pears, et cetera. Then"),
        ("etc. and more", "et cetera and more"),
        ("see No. 5 on p. 12", "see number five on page twelve"),
        ("No. I refuse.", "No. I refuse."),
        ("#1 & 2 + 2 = 4", "number one and two plus two equals four"),
    ],
)
def test_abbreviations_and_symbols(written: str, spoken: str) -> None:
    assert en(written) == spoken


def test_bracket_tags_pass_through_untouched() -> None:
    text = "[laugh] It costs $5 [sigh] and [clear throat] then [5 dollars] [pause 2s]."
    assert en(text) == "[laugh] It costs five dollars [sigh] and [clear throat] then [5 dollars] [pause 2s]."


@pytest.mark.parametrize("language", ["fr", "de-DE", "pt_BR", "zh"])
def test_other_languages_are_left_alone(language: str) -> None:
    text = "Il a 5 ans, coûte 3,50 € le 12/01/2026 : voir https://exemple.fr."
    assert normalize(text, language) == text


# --- properties -------------------------------------------------------------------------------------------------

# Words that mean something next to a number (units, months, am) are drawn often: set off by commas, they must stay.
_NEAR_NUMBERS = ["km", "m", "kg", "mph", "GB", "am", "pm", "May", "Jan", "Dec", "min", "h", "W", "of", "to", "s", "th"]
_word = (st.from_regex(r"[A-Za-z][a-z']{0,9}", fullmatch=True) | st.sampled_from(_NEAR_NUMBERS)).filter(
    lambda word: word.lower().rstrip("'") not in ABBREVIATIONS
)
_after_word = st.sampled_from([" ", " ", " ", ", ", ". ", "! ", "? ", "; ", ": "])
_TOKENS = [
    "555-1234", "12/01/2026", "2026-12-01", "3:30 pm", "$3.50", "€20", "£1.2m", "45%", "5 km", "20°C", "-5",
    "10-20", "1,234", "3.14", "21st", "1990s", "https://example.com/a-b", "jane.doe@example.org", "#1", "007",
    "+44 20 7946 0958", "1/2", "1.2.3", "MP3", "5am", "(555) 123-4567", "£3.01", "12345678901234567890",
]  # fmt: skip
_token = st.sampled_from(_TOKENS)
_tag = st.from_regex(r"\[[a-z0-9 ]{1,12}\]", fullmatch=True)


@st.composite
def _prose_with_tokens(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """Text of ordinary words with numbers, money, addresses and tags between them (each set off by commas,
    so a word is never the unit or month of the number next to it); and its words and tags, in order."""
    pieces: list[str] = []
    words: list[str] = []
    tags: list[str] = []
    for kind in draw(st.lists(st.sampled_from(["word", "word", "word", "token", "tag"]), max_size=40)):
        if kind == "word":
            word = draw(_word)
            words.append(word)
            pieces.append(word + draw(_after_word))
        elif kind == "token":
            pieces.append(f", {draw(_token)}, ")
        else:
            tag = draw(_tag)
            tags.append(tag)
            pieces.append(f" {tag} ")
    return "".join(pieces), words, tags


def _is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(word == candidate for candidate in remaining) for word in needles)


@settings(max_examples=300)
@given(case=_prose_with_tokens())
def test_no_word_of_ordinary_text_is_dropped_and_every_number_is_spoken(case: tuple[str, list[str], list[str]]) -> None:
    text, words, tags = case
    spoken = en(text)
    outside_tags = re.sub(r"\[[^\]]*\]", " ", spoken)
    assert _is_subsequence(words, re.findall(r"[A-Za-z']+", outside_tags)), spoken
    assert re.findall(r"\[[^\]]*\]", spoken) == tags
    assert not re.search(r"[0-9$€£¥%]", outside_tags), spoken


@given(text=st.text(alphabet=st.characters(categories=["L", "Zs"], include_characters=",;!?'\"-()\n")))
def test_text_without_digits_symbols_or_periods_is_unchanged(text: str) -> None:
    # Words alone, whatever the script: only "vs" (versus) is spelled out without a period.
    assert en(text) == text or "vs" in text


@settings(max_examples=200)
@given(case=_prose_with_tokens())
def test_normalising_twice_changes_nothing_more(case: tuple[str, list[str], list[str]]) -> None:
    once = en(case[0])
    assert en(once) == once


@given(text=st.text())
def test_any_text_normalises_without_error_and_keeps_its_tags(text: str) -> None:
    spoken = en(text)
    assert re.findall(r"\[[^\[\]\n]*\]", spoken) == re.findall(r"\[[^\[\]\n]*\]", text)
