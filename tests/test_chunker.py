# ruff: noqa: RUF001  (fullwidth CJK punctuation is what these tests are about)

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text.chunker import split_into_chunks


def _without_whitespace(text: str) -> str:
    """The characters that must come back: control characters and lone surrogates count as whitespace."""
    return "".join(
        character
        for character in text
        if not character.isspace() and unicodedata.category(character) not in ("Cc", "Cs")
    )


def _assert_well_formed(text: str, chunks: list[str], max_chars: int) -> None:
    assert _without_whitespace("".join(chunks)) == _without_whitespace(text)
    for chunk in chunks:
        assert chunk, "empty chunk"
        assert chunk == chunk.strip()
        assert len(chunk) <= max_chars, f"{len(chunk)} > {max_chars}: {chunk!r}"


# Pieces that reach every rule: abbreviations, decimals, URLs, ellipses, tags, CJK, dashes, giant words.
_PIECES = [
    "Hi.", "Mr.", "Dr.", "etc.", "e.g.", "U.S.", "J.", "No.", "5", "3.14", "1.2.3", "p.m.", "word", "Word",
    "https://example.com/a.b?c=d.e", "jane.doe@example.org", "...", "…", "?", "!", "?!", ".", ",", ";", ":",
    "—", "-", '"', "'", ")", "(", "[", "]", "[laugh]", "[clear throat]", "。", "！", "？", "，", "、",
    "今天天气很好", "x" * 57, "y" * 450, " ", " ", " ", "  ", "\n", "\n\n", "\t", "\u3000", "\xa0",
]  # fmt: skip
_texty = st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=120).map("".join)
_limits = st.integers(min_value=20, max_value=400)


@given(text=st.text(), max_chars=_limits)
def test_arbitrary_unicode_round_trips_within_the_limit(text: str, max_chars: int) -> None:
    _assert_well_formed(text, split_into_chunks(text, max_chars), max_chars)


@settings(max_examples=300)
@given(text=_texty, max_chars=_limits)
def test_text_like_input_round_trips_within_the_limit(text: str, max_chars: int) -> None:
    _assert_well_formed(text, split_into_chunks(text, max_chars), max_chars)


@given(
    words=st.lists(st.sampled_from(["[laugh]", "[clear throat]", "[sigh]", "so", "well,", "Yes.", "hmm"])),
    max_chars=_limits,
)
def test_bracket_tags_are_never_split(words: list[str], max_chars: int) -> None:
    for chunk in split_into_chunks(" ".join(words), max_chars):
        assert chunk.count("[") == chunk.count("]")
        assert not chunk.startswith("throat]")


@pytest.mark.parametrize("text", ["", "   ", "\n\t \u3000\xa0\r\n"])
def test_empty_or_whitespace_only_gives_no_chunks(text: str) -> None:
    assert split_into_chunks(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello\u0000world", ["hello world"]),
        ("one\x07two\x1bthree\x7ffour\x9ffive.", ["one two three four five."]),
        ("lone \ud800 surrogate", ["lone surrogate"]),
        ("\x00\x01\x02", []),
    ],
)
def test_control_characters_become_spaces_and_nothing_after_them_is_lost(text: str, expected: list[str]) -> None:
    assert split_into_chunks(text) == expected


def test_whitespace_is_collapsed_and_trimmed() -> None:
    assert split_into_chunks("  Hello\n\n   world.\t ") == ["Hello world."]


def test_short_sentences_are_packed_into_one_chunk() -> None:
    assert split_into_chunks("Hi. How are you? I am fine. Thanks!") == ["Hi. How are you? I am fine. Thanks!"]


def test_sentences_are_packed_greedily_up_to_the_limit() -> None:
    text = "Hi. How are you? I am fine. Thanks!"
    assert split_into_chunks(text, 20) == ["Hi. How are you?", "I am fine. Thanks!"]


def test_short_fragment_joins_the_long_sentence_after_it() -> None:
    text = "Hi. " + "word " * 12
    # Six words would fit in the second chunk, but would leave a lone "word": the tail is balanced instead.
    assert split_into_chunks(text, 30) == [
        "Hi. word word word word word",
        "word word word word word",
        "word word",
    ]


def test_short_fragment_stays_alone_rather_than_split_a_sentence_that_fits() -> None:
    first, second = "a" * 10 + " " + "b" * 17 + ".", "c" * 10 + " " + "d" * 18 + "."
    assert split_into_chunks(f"{first} Hi. {second}", 30) == [first, "Hi.", second]


def test_short_last_sentence_is_not_left_alone() -> None:
    first, second = "A" * 199 + ".", "B" * 94 + "."
    assert split_into_chunks(f"{first} {second} Bye.") == [first, f"{second} Bye."]


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        (
            "Yesterday I visited Mr. Brown, who lives on Baker St. near the park, and we talked.",
            40,
            ["Yesterday I visited Mr. Brown,", "who lives on Baker St. near the park,", "and we talked."],
        ),
        (
            "We met Dr. Who, Prof. Plum and Ms. Scarlet at the manor, and then left.",
            35,
            ["We met Dr. Who,", "Prof. Plum and Ms. Scarlet at the", "manor, and then left."],
        ),
        (
            "Apples, pears, etc. and plums were sold at 9 a.m. on the dot by the farmer.",
            40,
            ["Apples, pears,", "etc. and plums were sold at 9 a.m. on", "the dot by the farmer."],
        ),
        (
            "The book by J. K. Rowling sold in the U.S. and in the U.K. for years.",
            40,
            ["The book by J. K. Rowling sold in the", "U.S. and in the U.K. for years."],
        ),
        (
            "See Fig. 3 and No. 5 in the appendix of the report for more.",
            30,
            ["See Fig. 3 and No. 5 in the", "appendix of the report", "for more."],
        ),
    ],
)
def test_abbreviations_and_initials_do_not_end_sentences(text: str, max_chars: int, expected: list[str]) -> None:
    assert split_into_chunks(text, max_chars) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The meeting ended at 5 p.m. Then we went home.",
            ["The meeting ended at 5 p.m.", "Then we went home."],
        ),
        ("Sold by Apple Inc. The company is big.", ["Sold by Apple Inc.", "The company is big."]),
    ],
)
def test_abbreviation_before_a_capital_can_end_a_sentence(text: str, expected: list[str]) -> None:
    assert split_into_chunks(text, 30) == expected


def test_decimals_and_versions_are_not_boundaries() -> None:
    text = "Pi is about 3.14 and the version is 1.2.3 today, so update it now."
    assert split_into_chunks(text, 40) == [
        "Pi is about 3.14 and the version is",
        "1.2.3 today, so update it now.",
    ]


def test_urls_and_emails_are_kept_whole() -> None:
    text = "See https://example.com/a.b?c=d.e for details, or write to jane.doe@mail.example.org today."
    assert split_into_chunks(text, 50) == [
        "See https://example.com/a.b?c=d.e for details,",
        "or write to jane.doe@mail.example.org today.",
    ]


def test_ellipsis_before_lowercase_continues_the_sentence() -> None:
    text = "Wait... what is happening over there, my friend? I see… Then go."
    assert split_into_chunks(text, 30) == [
        "Wait... what is happening over",
        "there, my friend? I see…",
        "Then go.",
    ]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert split_into_chunks('He said "Stop." Then he left.', 20) == ['He said "Stop."', "Then he left."]


def test_numbered_list_markers_stay_with_their_item() -> None:
    text = "1. Buy milk\n2. Buy eggs\n3. Bake the cake"
    assert split_into_chunks(text, 20) == ["1. Buy milk", "2. Buy eggs", "3. Bake the cake"]


def test_line_breaks_are_sentence_boundaries() -> None:
    text = "First line without a period\nSecond line\n\nNew paragraph"
    assert split_into_chunks(text, 30) == ["First line without a period", "Second line New paragraph"]


def test_long_sentence_splits_at_clause_boundaries() -> None:
    text = "I can go — or maybe not - said the man; yes: well"
    assert split_into_chunks(text, 16) == ["I can go —", "or maybe not -", "said the man;", "yes: well"]


def test_long_sentence_without_punctuation_splits_between_words() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    assert split_into_chunks(text, 20) == ["alpha beta gamma", "delta epsilon zeta", "eta theta iota kappa"]


def test_word_longer_than_the_limit_is_split_hard() -> None:
    assert split_into_chunks("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_into_chunks("A" * 8 + " " + "b" * 25, 20) == ["A" * 8, "b" * 20, "b" * 5]


def test_cjk_sentences_split_without_spaces() -> None:
    text = "今天天气很好。我们去公园吧！你觉得怎么样？"
    assert split_into_chunks(text, 10) == ["今天天气很好。", "我们去公园吧！", "你觉得怎么样？"]


def test_cjk_closing_quote_and_clause_punctuation() -> None:
    assert split_into_chunks("他说：“我们走吧。”然后就走了。", 10) == ["他说：“我们走吧。”", "然后就走了。"]
    assert split_into_chunks("一二三四五六七，八九十一二三四，五六七八九十", 10) == [
        "一二三四五六七，",
        "八九十一二三四，",
        "五六七八九十",
    ]


def test_cjk_without_punctuation_is_split_hard() -> None:
    assert split_into_chunks("中" * 25, 10) == ["中" * 10, "中" * 10, "中" * 5]


def test_mixed_latin_and_cjk() -> None:
    text = "Hello world. 你好，世界。How are you? 我很好。"
    assert split_into_chunks(text, 15) == ["Hello world.", "你好，世界。", "How are you?", "我很好。"]


def test_bracket_tags_are_kept_intact() -> None:
    assert split_into_chunks("Well well [clear throat] so", 16) == ["Well well", "[clear throat]", "so"]
    assert split_into_chunks("x" * 50 + " [clear throat] yy", 55) == ["x" * 50, "[clear throat] yy"]


def test_text_of_exactly_the_limit_is_one_chunk() -> None:
    text = "Sentence one. " + "y" * 16
    assert len(text) == 30
    assert split_into_chunks(text, 30) == [text]


def test_sentence_ending_exactly_at_the_limit_fills_the_chunk() -> None:
    first = "z" * 29 + "."
    assert split_into_chunks(f"{first} Next one here.", 30) == [first, "Next one here."]
    assert split_into_chunks(f"{first} Next one here.", 29) == ["z" * 29, ". Next one here."]


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_into_chunks("Hello.", 0)
