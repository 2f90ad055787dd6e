"""Chunking: sentences, front matter and overlapping passages with exact character offsets."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import (
    chunk_source,
    chunk_text,
    enclosing_sentences,
    front_matter_end,
    sentence_spans,
    word_count_tokens,
)
from qa.types import Source

ARTICLE_FRONT_MATTER = "06/25/2014 11:41 am ET Updated Aug 25, 2014\n\nIran and US: The Enemy of My Enemy is My Friend"

# ------------------------------------------------------------------------------------------------
# Generated texts: sentences with varied punctuation, abbreviations, initials, unicode, line breaks,
# very long unpunctuated sentences, short title-like leading lines, and arbitrary unicode strings.

_plain_word = st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True)
_special_word = st.sampled_from([
    "U.S.", "U.K.", "Dr.", "Mr.", "Mrs.", "J.", "R.", "e.g.", "i.e.", "etc.", "No.", "3.5", "2011", "$500",
    "naïve", "Zürich", "Ayatollah", "東京", "Москва", "😀", "—", "(aside)", '"quoted"', "it's", "Suleimani,",
    "co-operate", "...", "?!", "“curly”",
])
_unicode_word = st.text(alphabet=st.characters(blacklist_categories=("C", "Z")), min_size=1, max_size=6)
_word = st.one_of(_plain_word, _special_word, _unicode_word)
_ending = st.sampled_from(["", ".", ".", "!", "?", "?!", '."', ".)", "…", "...", ".\u201d", ";", ":"])
_separator = st.sampled_from([" ", " ", "  ", "\n", "\n\n", "\t", " \n ", "\r\n", "\u00a0", "\n   \n"])


@st.composite
def _sentence(draw) -> str:
    words = draw(st.lists(_word, min_size=1, max_size=15))
    return " ".join(words) + draw(_ending)


@st.composite
def _long_unpunctuated_sentence(draw) -> str:
    n = draw(st.integers(min_value=40, max_value=200))
    vocabulary = draw(st.lists(_plain_word, min_size=1, max_size=5))
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(n))


@st.composite
def _document(draw) -> str:
    parts = []
    if draw(st.booleans()):  # a dateline / title / byline block
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            parts.append(" ".join(draw(st.lists(_plain_word, min_size=1, max_size=6))) + draw(st.sampled_from(["\n", "\n\n"])))
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        sentence = draw(st.one_of(_sentence(), _sentence(), _sentence(), _long_unpunctuated_sentence()))
        parts.append(sentence + draw(_separator))
    text = "".join(parts)
    return draw(st.sampled_from(["", " ", "\n", "  \n"])) + text


_text = st.one_of(_document(), _document(), _document(), st.text(max_size=400))


@st.composite
def _chunk_params(draw) -> tuple[int, int]:
    max_tokens = draw(st.integers(min_value=8, max_value=80))
    overlap = draw(st.integers(min_value=0, max_value=max_tokens - 1))
    return max_tokens, overlap


def _assert_overlap_when_possible(text, passages, overlap, count, max_tokens=10**9) -> None:
    """Consecutive body passages overlap when possible: when a passage holds more than one sentence,
    its last sentence fits in ``overlap`` tokens, and that sentence plus the next new sentence fit in
    ``max_tokens``, the next passage starts at or before that sentence."""
    head = front_matter_end(text)
    body = [p for p in passages if p.start >= head] if head else passages
    sentences = sentence_spans(text)
    for before, after in zip(body, body[1:]):
        last = next(((s, e) for s, e in sentences if e == before.end), None)
        if last is None or last[0] <= before.start:
            continue
        nxt = next(((s, e) for s, e in sentences if s >= before.end), None)
        fits = nxt is None or count(text[last[0]:last[1]]) + count(text[nxt[0]:nxt[1]]) <= max_tokens
        if count(text[last[0]:last[1]]) <= overlap and fits:
            assert after.start <= last[0] < before.end, (before, after)


def _non_space_positions(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if not text[i].isspace()]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text, params=_chunk_params())
def test_generated_texts_chunk_into_exact_ordered_bounded_overlapping_passages_that_cover_every_sentence(text, params):
    max_tokens, overlap = params
    source = Source.from_text(text, "Generated", "generated.txt")
    passages = chunk_source(source, max_tokens, overlap, word_count_tokens)

    # Offsets are exact and passages are trimmed, non-empty slices.
    for p in passages:
        assert 0 <= p.start < p.end <= len(text)
        assert text[p.start:p.end] == p.text
        assert p.text == p.text.strip()
        assert p.source_id == source.id

    # In document order: each passage starts after the previous one and does not end before it.
    for before, after in zip(passages, passages[1:]):
        assert before.start < after.start
        assert before.end <= after.end

    # No passage is longer than max_tokens.
    for p in passages:
        assert word_count_tokens(p.text) <= max_tokens, (p.text, max_tokens)

    # Every character of every sentence is inside some passage (whitespace excepted: a long
    # sentence is cut at word boundaries).
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    for s, e in sentence_spans(text):
        missing = [i for i in _non_space_positions(text, s, e) if i not in covered]
        assert not missing, (text[s:e], missing[:5])
    if text.strip():
        assert passages
    else:
        assert passages == []

    _assert_overlap_when_possible(text, passages, overlap, word_count_tokens, max_tokens)


@settings(max_examples=100, deadline=None)
@given(text=_text)
def test_sentence_spans_are_trimmed_non_empty_and_in_order(text):
    spans = sentence_spans(text)
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
    for (_, e1), (s2, _) in zip(spans, spans[1:]):
        assert e1 <= s2
    # Nothing but whitespace lies outside the sentences.
    inside = set()
    for s, e in spans:
        inside.update(range(s, e))
    assert all(text[i].isspace() for i in range(len(text)) if i not in inside)


# ------------------------------------------------------------------------------------------------
# Sentences


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_sentence_spans_trim_surrounding_whitespace():
    text = "  Hello there.   How are you?  \n\t Fine!  "
    assert _sentences(text) == ["Hello there.", "How are you?", "Fine!"]


def test_sentence_spans_do_not_split_after_us_abbreviation():
    text = "This is precarious for the U.S. as ISIS advances. Iran watches."
    assert _sentences(text) == ["This is precarious for the U.S. as ISIS advances.", "Iran watches."]


def test_sentence_spans_do_not_split_after_titles_like_dr_and_mr():
    text = "Dr. Smith met Mr. Jones in Tehran. They talked."
    assert _sentences(text) == ["Dr. Smith met Mr. Jones in Tehran.", "They talked."]


def test_sentence_spans_do_not_split_after_initials():
    text = "The book by J. R. R. Tolkien sold well. Sequels followed."
    assert _sentences(text) == ["The book by J. R. R. Tolkien sold well.", "Sequels followed."]


def test_sentence_spans_split_on_question_and_exclamation_marks_and_closing_quotes():
    text = 'Is it over? "No!" he said. (It was.) Done'
    assert _sentences(text) == ["Is it over?", '"No!"', "he said.", "(It was.)", "Done"]


def test_a_line_break_always_ends_a_sentence():
    text = "A headline without a full stop\nThe body starts here."
    assert _sentences(text) == ["A headline without a full stop", "The body starts here."]


def test_sentence_spans_of_blank_text_are_empty():
    assert sentence_spans("") == []
    assert sentence_spans(" \n\t \n") == []


# ------------------------------------------------------------------------------------------------
# Front matter


def test_front_matter_of_the_shipped_article_is_exactly_the_dateline_and_title(article_text):
    assert article_text[:front_matter_end(article_text)] == ARTICLE_FRONT_MATTER


def test_a_text_that_starts_with_its_body_has_no_front_matter():
    text = ("As the Islamic State in Iraq and the Levant has been making remarkably rapid military advances "
            "across Iraq, two enemies have shown great concern.\nThe Obama administration withdrew its forces.")
    assert front_matter_end(text) == 0


def test_a_text_of_only_short_lines_has_no_front_matter():
    assert front_matter_end("Title\nSubtitle\nBy Someone") == 0


def test_a_short_leading_line_that_ends_a_sentence_is_not_front_matter():
    text = "It rained.\n" + "The long body of the text goes on and on with many words, more than sixteen of them in all here."
    assert front_matter_end(text) == 0


def test_the_front_matter_is_a_passage_of_its_own(article_source):
    passages = chunk_source(article_source)
    assert passages[0].text == ARTICLE_FRONT_MATTER
    assert passages[1].start > front_matter_end(article_source.text)


# ------------------------------------------------------------------------------------------------
# Enclosing sentences


def test_enclosing_sentences_returns_the_sentence_around_a_span():
    text = "Iran sent forces. Qassem Suleimani commands the Quds Force. He reports to Khamenei."
    start = text.index("Quds Force")
    s, e = enclosing_sentences(text, start, start + len("Quds Force"))
    assert text[s:e] == "Qassem Suleimani commands the Quds Force."


def test_enclosing_sentences_spans_every_sentence_a_span_touches():
    text = "Iran sent forces. Qassem Suleimani commands the Quds Force. He reports to Khamenei."
    start = text.index("forces")
    end = text.index("Qassem") + len("Qassem")
    s, e = enclosing_sentences(text, start, end)
    assert text[s:e] == "Iran sent forces. Qassem Suleimani commands the Quds Force."


def test_enclosing_sentences_always_contains_the_span():
    text = "One. Two three. Four."
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            s, e = enclosing_sentences(text, start, end)
            assert s <= start and e >= end


# ------------------------------------------------------------------------------------------------
# Packing


def test_a_single_over_long_sentence_is_cut_at_word_boundaries():
    text = " ".join(f"w{i}" for i in range(200))
    spans = chunk_text(text, max_tokens=30, overlap_tokens=0)
    assert len(spans) > 1
    for s, e in spans:
        assert word_count_tokens(text[s:e]) <= 30
        assert (s == 0 or text[s - 1] == " ") and (e == len(text) or text[e] == " ")
    assert " ".join(text[s:e] for s, e in spans) == text


def test_neighbouring_passages_share_whole_sentences():
    text = " ".join(f"Sentence number {i} has a few words." for i in range(30))
    spans = chunk_text(text, max_tokens=40, overlap_tokens=15)
    sentence_starts = {s for s, _ in sentence_spans(text)}
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s2 < e1  # they overlap
        assert s2 in sentence_starts  # on a sentence boundary


def test_every_passage_reaches_beyond_the_previous_one():
    s1 = " ".join(["alpha"] * 60) + "."  # 79 tokens
    s2 = " ".join(["beta"] * 20) + "."  # 27 tokens: fits in the overlap
    s3 = " ".join(["gamma"] * 76) + "."  # 99 tokens: 27 + 99 > 120
    text = f"{s1} {s2} {s3}"
    spans = chunk_text(text, max_tokens=120, overlap_tokens=40)
    for (_, e1), (s2, e2) in zip(spans, spans[1:]):
        assert e2 > e1, f"passage {text[s2:e2][:20]!r} adds nothing to the one before"


def test_the_shipped_article_chunks_into_passages_of_at_most_120_embedder_tokens(article_source, embedder):
    passages = chunk_source(article_source, 120, 40, embedder.count_tokens)
    assert len(passages) > 5
    for p in passages:
        assert article_source.text[p.start:p.end] == p.text
        assert embedder.count_tokens(p.text) <= 120
    _assert_overlap_when_possible(article_source.text, passages, 40, embedder.count_tokens, 120)
    body = passages[1:]
    assert sum(after.start < before.end for before, after in zip(body, body[1:])) >= len(body) // 2
    last_sentence = sentence_spans(article_source.text)[-1]
    assert passages[-1].end == last_sentence[1]
