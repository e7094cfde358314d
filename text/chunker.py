"""Splitting text into chunks short enough for the TTS model, cut where a reader would pause.

A chunk ends, in order of preference, at a sentence boundary, a clause boundary, a space, or (for a word
longer than `max_chars`, or CJK text without punctuation) hard at `max_chars`, so no chunk is ever longer
than `max_chars`. Consecutive sentences are packed greedily, so the model is called as few times as it can be.

Whitespace is normalized: each run of whitespace inside a chunk becomes one space, line breaks included, and
chunks carry no surrounding whitespace. Control characters and lone surrogates, which are not text (and a NUL ends
the C string an engine reads), count as whitespace. Every other character comes back exactly once and in order.
"""

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from text.tags import BRACKET_TAG

_WORD, _CLAUSE, _SENTENCE = 1, 2, 3
"""How good a place to cut is; the chunker takes the best level it can find within the limit."""

_CLOSERS = "\"'”’»)]}」』）》〉】〕］｝"  # noqa: RUF001
_OPENERS = "\"'“‘«([{「『（《〈【〔［｛"  # noqa: RUF001
_CLOSER_CLASS = f"[{re.escape(_CLOSERS)}]*"

_WHITESPACE_RUN = re.compile(r"\s+")
_NOT_TEXT = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")
"""Control characters that are not whitespace already (C0, DEL, C1), and lone surrogates."""
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines() splits on
# Cuts are positions in the normalized text: the chunk before a cut ends just before that position.
# The lookbehinds start each match at the start of its punctuation run, keeping long runs linear.
_TERMINAL = re.compile(rf"(?<![.!?…])([.!?…]+)({_CLOSER_CLASS})(?=\s)")
_CJK_TERMINAL = re.compile(rf"[。！？]+{_CLOSER_CLASS}")  # noqa: RUF001
_CLAUSE_PUNCTUATION = re.compile(rf"(?<![,;:])[,;:]+{_CLOSER_CLASS}(?=\s)")
_CJK_CLAUSE_PUNCTUATION = re.compile(rf"[，、；：]+{_CLOSER_CLASS}")  # noqa: RUF001
_SPACED_DASH = re.compile(r"(?<=\s)[-–—](?=\s)")  # noqa: RUF001
_UNSPACED_EM_DASH = re.compile(r"(?<=\S)—+(?=\S)")
_DOTTED_INITIALS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S, e.g, J.K (the final dot is matched apart)

_SHORT_CHUNK = 20
"""Chunks shorter than this (or a quarter of the limit) tend to come out rushed: merge them if possible."""

_NEVER_FINAL = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "mt", "vs", "cf"})
_FINAL_BEFORE_CAPITAL = frozenset({"etc", "jr", "sr", "inc", "ltd", "co", "corp", "a.m", "p.m"})
_BEFORE_NUMBER = frozenset({"no", "fig", "vol", "pp"})
_LONGEST_ABBREVIATION = 12
"""Words longer than this before a period are never taken for abbreviations (and are not searched)."""


def split_into_chunks(text: str, max_chars: int = 300) -> list[str]:
    """Splits `text` into chunks of at most `max_chars` characters, preferring sentence boundaries.

    A word longer than `max_chars` is split hard at the limit. A fragment shorter than 20 characters (or a
    quarter of the limit), such as "Hi.", is merged into a neighbouring chunk rather than spoken alone, unless
    that would split a sentence which otherwise fits whole. Empty or whitespace-only text gives no chunks.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    normalized = _normalize_whitespace(text)
    if not normalized:
        return []
    cuts = _Cuts.find(normalized, max_chars)
    min_chars = max(1, min(_SHORT_CHUNK, max_chars // 4))
    chunks: list[str] = []
    start = 0
    while len(normalized) - start > max_chars:
        cut = _choose_cut(cuts, start, max_chars, min_chars)
        chunks.append(_clean(normalized[start:cut]))
        start = cuts.skip_space(cut)
    chunks.append(_clean(normalized[start:]))
    return chunks


def _normalize_whitespace(text: str) -> str:
    """Collapses each whitespace run to a newline if it holds a line break, else to a single space."""
    text = _NOT_TEXT.sub(" ", text)
    return _WHITESPACE_RUN.sub(lambda run: "\n" if _LINE_BREAK.search(run[0]) else " ", text).strip()


def _clean(chunk: str) -> str:
    return chunk.strip().replace("\n", " ")


@dataclass(frozen=True)
class _Cuts:
    """The places where a normalized text may be cut, by level, outside protected bracket tags."""

    text: str
    at_least: dict[int, list[int]]
    """For each level, the sorted cut positions of that level or better."""
    tags: list[tuple[int, int]]
    """Spans of `[tags]` short enough to keep whole, sorted; nothing cuts inside them."""

    @classmethod
    def find(cls, text: str, max_chars: int) -> "_Cuts":
        levels = [0] * (len(text) + 1)
        for level, positions in (
            (_WORD, _word_cuts(text)),
            (_CLAUSE, _clause_cuts(text)),
            (_SENTENCE, _sentence_cuts(text)),
        ):
            for position in positions:
                levels[position] = max(levels[position], level)
        tags = [match.span() for match in BRACKET_TAG.finditer(text) if len(match[0]) <= max_chars]
        for tag_start, tag_end in tags:
            levels[tag_start + 1 : tag_end] = [0] * (tag_end - tag_start - 1)
        levels[0] = levels[-1] = 0
        at_least = {
            level: [position for position, found in enumerate(levels) if found >= level]
            for level in (_WORD, _CLAUSE, _SENTENCE)
        }
        return cls(text, at_least, tags)

    def latest(self, level: int, after: int, limit: int) -> int | None:
        """The last cut of at least `level` in (after, limit], if any."""
        positions = self.at_least[level]
        index = bisect_right(positions, limit) - 1
        if index >= 0 and positions[index] > after:
            return positions[index]
        return None

    def next_unit_fits(self, level: int, cut: int, max_chars: int) -> bool:
        """Whether the text from `cut` to the next cut of at least `level` fits in one chunk."""
        positions = self.at_least[level]
        index = bisect_right(positions, cut)
        unit_end = positions[index] if index < len(positions) else len(self.text)
        return unit_end - self.skip_space(cut) <= max_chars

    def earlier(self, level: int, cut: int, after: int) -> list[int]:
        """Cuts of at least `level` in (after, cut), latest first."""
        positions = self.at_least[level]
        return positions[bisect_right(positions, after) : bisect_left(positions, cut)][::-1]

    def hard_cut(self, start: int, max_chars: int) -> int:
        """`max_chars` past `start`, moved back to the start of a tag it would fall inside."""
        cut = start + max_chars
        index = bisect_left(self.tags, (cut, cut)) - 1
        if index >= 0:
            tag_start, tag_end = self.tags[index]
            if start < tag_start < cut < tag_end:
                return tag_start
        return cut

    def skip_space(self, position: int) -> int:
        # Normalized text has no whitespace runs, so at most one character is skipped.
        return position + 1 if self.text[position : position + 1].isspace() else position

    def tail_length(self, cut: int) -> int:
        return len(self.text) - self.skip_space(cut)


def _choose_cut(cuts: _Cuts, start: int, max_chars: int, min_chars: int) -> int:
    """Where the chunk starting at `start` should end, given that the rest of the text is too long."""
    limit = start + max_chars
    for level in (_SENTENCE, _CLAUSE, _WORD):
        cut = cuts.latest(level, start, limit)
        if cut is None:
            continue
        # A short fragment is worth a worse cut only where the text after it must be cut anyway.
        if cut - start >= min_chars or cuts.next_unit_fits(level, cut, max_chars):
            return _avoid_short_tail(cuts, level, start, cut, max_chars, min_chars)
    return cuts.hard_cut(start, max_chars)


def _avoid_short_tail(cuts: _Cuts, level: int, start: int, cut: int, max_chars: int, min_chars: int) -> int:
    """Moves `cut` back to an equally good cut if that keeps the last chunk from being a short fragment."""
    if cuts.tail_length(cut) >= min_chars:
        return cut
    for earlier in cuts.earlier(level, cut, start + min_chars - 1):
        tail = cuts.tail_length(earlier)
        if tail > max_chars:
            break
        if tail >= min_chars:
            return earlier
    return cut


def _word_cuts(text: str) -> list[int]:
    return [match.start() for match in _WHITESPACE_RUN.finditer(text)]


def _clause_cuts(text: str) -> list[int]:
    spaced = [match.end() for match in _CLAUSE_PUNCTUATION.finditer(text)]
    spaced += [match.end() for match in _SPACED_DASH.finditer(text)]
    unspaced = [match.end() for match in _CJK_CLAUSE_PUNCTUATION.finditer(text)]
    unspaced += [match.end() for match in _UNSPACED_EM_DASH.finditer(text)]
    return spaced + unspaced


def _sentence_cuts(text: str) -> list[int]:
    cuts = [match.start() for match in _LINE_BREAK.finditer(text)]
    cuts += [match.end() for match in _TERMINAL.finditer(text) if _ends_sentence(text, match)]
    cuts += [match.end() for match in _CJK_TERMINAL.finditer(text)]
    return cuts


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether terminal punctuation followed by whitespace really ends a sentence."""
    punctuation, closers = match.groups()
    following = text[match.end() + 1 : match.end() + 2]
    if "!" in punctuation or "?" in punctuation:
        return True
    if "…" in punctuation or len(punctuation) > 1:
        return not following.islower()  # an ellipsis mid-sentence: "Wait... what?"
    if closers:
        return True
    return not _is_abbreviation(text, match.start(), following)


def _is_abbreviation(text: str, period: int, following: str) -> bool:
    """Whether the word before the period at `period` is an abbreviation, an initial or a list number."""
    search_from = max(0, period - _LONGEST_ABBREVIATION - 1)
    word_start = max(text.rfind(" ", search_from, period), text.rfind("\n", search_from, period)) + 1
    if word_start == 0 and search_from > 0:
        return False
    word = text[word_start:period].lstrip(_OPENERS)
    lowered = word.lower()
    if lowered in _FINAL_BEFORE_CAPITAL:
        return not following.isupper()
    if lowered in _BEFORE_NUMBER:
        return following.isdigit()
    if word.isdigit() and len(word) <= 3:
        return word_start == 0 or text[word_start - 1] == "\n"  # "2. Add the eggs" starting a line
    is_initial = len(word) == 1 and word.isupper()
    return lowered in _NEVER_FINAL or is_initial or _DOTTED_INITIALS.fullmatch(word) is not None
