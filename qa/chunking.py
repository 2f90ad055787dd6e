"""Split a source's text into overlapping passages on sentence boundaries, with exact offsets.

Every passage satisfies ``source.text[p.start:p.end] == p.text``. Passages are packed from whole
sentences up to ``max_tokens`` tokens (a single longer sentence is cut at word boundaries), and each
passage after the first starts far enough back to share about ``overlap_tokens`` tokens with the one
before, so an answer near a boundary is whole in at least one passage.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from qa.types import Passage, Source

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, or at a line break.
_SENTENCE_END = re.compile(r"""[.!?]+["'\u201d\u2019)\]]*(?=\s)|\n""")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "u.s", "u.k",
                  "no", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
                  "gen", "col", "lt", "sen", "rep", "gov", "pres", "inc", "co", "corp", "ltd", "fig", "al"}
_WORD = re.compile(r"\S+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, whitespace trimmed, in order.

    Line breaks always end a sentence; ``. ! ?`` end one unless they close a known abbreviation
    or a single capital letter (an initial such as "J.").
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.group() != "\n":
            before = text[start : m.start()].split()
            last = before[-1].lower().rstrip(".") if before else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue
        _add_trimmed(text, start, m.end(), spans)
        start = m.end()
    _add_trimmed(text, start, len(text), spans)
    return spans


def _add_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def word_count_tokens(text: str) -> int:
    """A tokenizer-free token estimate (1.3 word pieces per word), for tests and tokenizer-less use."""
    return int(len(_WORD.findall(text)) * 1.3) + 1


def _split_long(text: str, span: tuple[int, int], max_tokens: int,
                count: Callable[[str], int]) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most ``max_tokens`` at word boundaries."""
    words = [(m.start() + span[0], m.end() + span[0]) for m in _WORD.finditer(text[span[0] : span[1]])]
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and count(text[words[i][0] : words[j][1]]) <= max_tokens:
            j += 1
        pieces.append((words[i][0], words[j - 1][1]))
        i = j
    return pieces


def front_matter_end(text: str, max_words: int = 16, max_lines: int = 6) -> int:
    """Where a document's front matter (dateline, title, byline: short lines before the body) ends; 0 if none.

    The front matter is the run of leading non-empty lines of at most ``max_words`` words that do not
    end a sentence, when a longer line (the body) follows them.
    """
    end, seen = 0, 0
    for m in re.finditer(r"[^\n]+", text):
        line = m.group().strip()
        if not line:
            continue
        if len(line.split()) > max_words or line.endswith((".", "!", "?")) or seen >= max_lines:
            return end if seen else 0
        end, seen = m.start() + len(m.group().rstrip()), seen + 1
    return 0


def chunk_text(text: str, max_tokens: int = 120, overlap_tokens: int = 40,
               count_tokens: Callable[[str], int] = word_count_tokens) -> list[tuple[int, int]]:
    """Passage spans over ``text``: whole sentences packed up to ``max_tokens``, overlapping.

    The front matter (see :func:`front_matter_end`) is a passage of its own, so that questions about
    the document itself (its title, date or author) find it rather than the body's first paragraph.

    Args:
        text: the source text.
        max_tokens: most tokens in a passage (a passage of one cut sentence piece always fits).
        overlap_tokens: aim for this many tokens shared with the previous passage (whole sentences).
        count_tokens: counts tokens of a string (the reader's or embedder's tokenizer).
    Returns:
        (start, end) character spans, in order, covering every sentence.
    """
    units: list[tuple[int, int]] = []
    head = front_matter_end(text)
    out: list[tuple[int, int]] = []
    if head and count_tokens(text[:head]) <= max_tokens:
        first = len(text[:head]) - len(text[:head].lstrip())
        out.append((first, head))
    else:
        head = 0
    for span in sentence_spans(text):
        if span[1] <= head:
            continue
        if count_tokens(text[span[0] : span[1]]) > max_tokens:
            units.extend(_split_long(text, span, max_tokens, count_tokens))
        else:
            units.append(span)
    sizes = [count_tokens(text[s:e]) for s, e in units]
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + sizes[j] <= max_tokens):
            total += sizes[j]
            j += 1
        out.append((units[i][0], units[j - 1][1]))
        if j >= len(units):
            break
        # Step back over whole sentences to share about overlap_tokens with this passage.
        k, shared = j, 0
        while k - 1 > i and shared + sizes[k - 1] <= overlap_tokens and shared + sizes[k - 1] + sizes[j] <= max_tokens:
            k -= 1
            shared += sizes[k]
        i = k
    return out


def chunk_source(source: Source, max_tokens: int = 120, overlap_tokens: int = 40,
                 count_tokens: Callable[[str], int] = word_count_tokens) -> list[Passage]:
    """The passages of one source (see :func:`chunk_text`)."""
    return [Passage(source.id, s, e, source.text[s:e])
            for s, e in chunk_text(source.text, max_tokens, overlap_tokens, count_tokens)]


@functools.lru_cache(maxsize=32)
def _source_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """:func:`sentence_spans` of a source text, split once: every candidate answer of every question looks it up."""
    return tuple(sentence_spans(text))


def enclosing_sentences(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence(s) of ``text`` that contain the characters ``[start, end)``."""
    spans = _source_sentences(text)
    first = next((s for s, e in spans if e > start), start)
    last = next((e for s, e in reversed(spans) if s < end), end)
    return min(first, start), max(last, end)
