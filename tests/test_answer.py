"""From reader spans to an answer: source offsets, quotes, merged duplicates, probabilities, abstention."""

from __future__ import annotations

import math

import pytest

from qa.answer import best_guess, build_answer, cite, softmax
from qa.reader import Reading, Span
from qa.types import Answer, Passage, ScoredPassage, Source

TEXT = ("Iran and US: The Enemy of My Enemy is My Friend\n\n"
        "The Islamic Republic has sent approximately 500 forces to Iraq. "
        "Qassem Suleimani, the commander of the Quds Force, is now in control of this operation. "
        "He reports directly to the supreme leader, Ayatollah Ali Khamenei. "
        "The Obama administration withdrew its forces at the end of 2011.")
SOURCE = Source.from_text(TEXT, "Iran and US", "article.txt")
SOURCES = {SOURCE.id: SOURCE}


def _passage(first: str, last: str) -> Passage:
    """The passage from the sentence starting with ``first`` to the one ending with ``last``."""
    start = TEXT.index(first)
    end = TEXT.index(last) + len(last)
    return Passage(SOURCE.id, start, end, TEXT[start:end])


# Two overlapping passages: both hold the Suleimani sentence.
P0 = _passage("The Islamic Republic", "of this operation.")
P1 = _passage("Qassem Suleimani", "of 2011.")
PASSAGES = [ScoredPassage(P0, 0.9, 0), ScoredPassage(P1, 0.8, 1)]


def _span(passage_index: int, answer: str, score: float, occurrence: str | None = None) -> Span:
    """A span of ``answer`` inside passage ``passage_index`` (found inside ``occurrence`` if given)."""
    text = PASSAGES[passage_index].passage.text
    anchor = text.index(occurrence) if occurrence else 0
    start = text.index(answer, anchor)
    return Span(answer, score, passage_index, start, start + len(answer))


def test_a_span_is_mapped_from_passage_offsets_to_source_offsets():
    reading = Reading([_span(1, "Ayatollah Ali Khamenei", 8.0)], no_answer_score=1.0)
    answer = build_answer("Who does he report to?", reading, PASSAGES, SOURCES)
    assert answer.text == "Ayatollah Ali Khamenei"
    [citation] = answer.citations
    assert citation.source_id == SOURCE.id and citation.title == "Iran and US" and citation.origin == "article.txt"
    assert TEXT[citation.start:citation.end] == "Ayatollah Ali Khamenei"
    assert citation.start == P1.start + PASSAGES[1].passage.text.index("Ayatollah Ali Khamenei")


def test_the_quote_is_the_source_sentence_around_the_answer():
    reading = Reading([_span(0, "500", 5.0)], no_answer_score=0.0)
    answer = build_answer("How many forces?", reading, PASSAGES, SOURCES)
    [citation] = answer.citations
    assert citation.quote == "The Islamic Republic has sent approximately 500 forces to Iraq."
    assert TEXT[citation.quote_start:citation.quote_end] == citation.quote
    assert citation.quote_start <= citation.start < citation.end <= citation.quote_end
    assert answer.text in citation.quote


def test_cite_quotes_every_sentence_an_answer_spans():
    start = TEXT.index("operation")
    end = TEXT.index("He reports") + len("He reports")
    citation = cite(SOURCE, start, end)
    assert citation.quote == ("Qassem Suleimani, the commander of the Quds Force, is now in control of this "
                              "operation. He reports directly to the supreme leader, Ayatollah Ali Khamenei.")
    assert TEXT[citation.quote_start:citation.quote_end] == citation.quote


def test_the_same_source_span_read_in_two_overlapping_passages_is_one_candidate_with_the_best_score():
    in_first = _span(0, "Qassem Suleimani", 6.0)
    in_second = _span(1, "Qassem Suleimani", 7.5)
    assert in_first.start != in_second.start  # different passage offsets, same source characters
    reading = Reading([in_second, in_first, _span(1, "supreme leader", 3.0)], no_answer_score=0.0)
    answer = build_answer("Who commands the Quds Force?", reading, PASSAGES, SOURCES)
    suleimani = [c for c in answer.candidates if c.text == "Qassem Suleimani"]
    assert len(suleimani) == 1
    assert suleimani[0].score == 7.5
    assert len(answer.candidates) == 2
    assert answer.text == "Qassem Suleimani"
    assert TEXT[answer.citations[0].start:answer.citations[0].end] == "Qassem Suleimani"


def test_candidate_probabilities_sum_to_at_most_one_and_rank_like_scores():
    reading = Reading([_span(1, "Ayatollah Ali Khamenei", 6.0), _span(0, "Qassem Suleimani", 9.0),
                       _span(1, "supreme leader", 4.0), _span(0, "500", -1.0)], no_answer_score=2.0)
    answer = build_answer("Who?", reading, PASSAGES, SOURCES)
    probs = [c.probability for c in answer.candidates]
    scores = [c.score for c in answer.candidates]
    assert all(0.0 < p < 1.0 for p in probs)
    assert sum(probs) <= 1.0
    assert scores == sorted(scores, reverse=True)
    assert probs == sorted(probs, reverse=True)
    assert answer.score == pytest.approx(probs[0])
    # the remaining mass belongs to the no-answer score: softmax over candidates and no-answer
    expected = softmax(scores + [2.0])
    assert probs == pytest.approx(expected[:-1])
    assert 1.0 - sum(probs) == pytest.approx(expected[-1])


def test_only_the_n_best_candidates_are_kept():
    spans = [_span(0, word, float(10 - i)) for i, word in enumerate(["Islamic", "Republic", "500", "forces", "Iraq"])]
    answer = build_answer("Q?", Reading(spans, no_answer_score=0.0), PASSAGES, SOURCES, n_best=3)
    assert [c.text for c in answer.candidates] == ["Islamic", "Republic", "500"]


def test_the_engine_abstains_when_the_margin_is_below_the_threshold():
    reading = Reading([_span(0, "Qassem Suleimani", 5.0)], no_answer_score=4.0)  # margin 1.0
    answer = build_answer("Who?", reading, PASSAGES, SOURCES, no_answer_threshold=1.5)
    assert answer.abstained
    assert answer.text is None and answer.score == 0.0 and answer.citations == []
    assert answer.passages == PASSAGES


def test_the_engine_answers_when_the_margin_reaches_the_threshold():
    reading = Reading([_span(0, "Qassem Suleimani", 5.0)], no_answer_score=4.0)  # margin 1.0
    answer = build_answer("Who?", reading, PASSAGES, SOURCES, no_answer_threshold=1.0)
    assert answer.text == "Qassem Suleimani"


def test_the_engine_abstains_when_the_no_answer_score_beats_every_span():
    reading = Reading([_span(0, "Qassem Suleimani", 1.0)], no_answer_score=3.0)
    answer = build_answer("What is the capital of France?", reading, PASSAGES, SOURCES)
    assert answer.text is None and answer.score == 0.0 and answer.citations == []


def test_the_engine_abstains_when_the_best_probability_is_under_the_minimum():
    reading = Reading([_span(0, "Qassem Suleimani", 3.0), _span(1, "Ayatollah Ali Khamenei", 3.0)],
                      no_answer_score=2.0)
    answer = build_answer("Who?", reading, PASSAGES, SOURCES, min_answer_prob=0.5)
    assert answer.text is None and answer.citations == []


def test_the_engine_abstains_when_the_reader_found_no_span():
    answer = build_answer("Who?", Reading([], no_answer_score=0.0), PASSAGES, SOURCES)
    assert answer.text is None and answer.score == 0.0
    assert answer.citations == [] and answer.candidates == []
    assert answer.passages == PASSAGES


def test_the_best_guess_of_an_abstention_is_the_candidate_the_reader_preferred_to_no_answer():
    reading = Reading([_span(0, "Qassem Suleimani", 5.0)], no_answer_score=4.0)  # margin 1.0, held back
    answer = build_answer("Who?", reading, PASSAGES, SOURCES, no_answer_threshold=3.0)
    assert answer.abstained and best_guess(answer) == "Qassem Suleimani"


def test_there_is_no_best_guess_when_the_reader_prefers_no_answer():
    reading = Reading([_span(0, "Qassem Suleimani", 3.0)], no_answer_score=4.0)  # margin -1.0
    assert best_guess(build_answer("Who?", reading, PASSAGES, SOURCES, no_answer_threshold=3.0)) is None
    assert best_guess(build_answer("Who?", Reading([], no_answer_score=0.0), PASSAGES, SOURCES)) is None


def test_the_best_guess_of_an_answer_is_the_answer():
    reading = Reading([_span(0, "Qassem Suleimani", 5.0), _span(1, "Ayatollah Ali Khamenei", 4.9)],
                      no_answer_score=0.0)
    assert best_guess(build_answer("Who?", reading, PASSAGES, SOURCES)) == "Qassem Suleimani"


def test_answer_to_dict_has_the_question_answer_score_and_citations():
    reading = Reading([_span(1, "Ayatollah Ali Khamenei", 8.0)], no_answer_score=1.0)
    answer = build_answer("Who does he report to?", reading, PASSAGES, SOURCES)
    data = answer.to_dict()
    assert {"question", "answer", "score", "citations"} <= set(data)
    assert data["question"] == "Who does he report to?"
    assert data["answer"] == "Ayatollah Ali Khamenei"
    assert data["score"] == round(answer.score, 4)
    [citation] = data["citations"]
    assert {"source", "title", "start", "end", "quote", "quote_start", "quote_end"} <= set(citation)
    assert citation["source"] == SOURCE.id and citation["title"] == "Iran and US"
    assert TEXT[citation["start"]:citation["end"]] == "Ayatollah Ali Khamenei"
    assert TEXT[citation["quote_start"]:citation["quote_end"]] == citation["quote"]


def test_an_abstention_serialises_with_a_null_answer_and_no_citations():
    data = Answer("Who?", None, 0.0, passages=PASSAGES).to_dict()
    assert data["answer"] is None and data["score"] == 0 and data["citations"] == []
    assert len(data["passages"]) == 2


def test_softmax_is_a_probability_distribution_that_survives_large_scores():
    probs = softmax([1000.0, 999.0, -math.inf])
    assert sum(probs) == pytest.approx(1.0)
    assert probs[0] > probs[1] > probs[2] == 0.0
