"""Document fields: what a document states about itself, cited at exact offsets, found by retrieval and read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.answer import build_answer
from qa.metadata import Card, author_name, document_card, document_fields, refers_to_document, search_text
from qa.reader import Reading, Span
from qa.types import Passage, ScoredPassage, Source

BLOG = (
    "March 3, 2021, updated 4 March 2021\n\n"
    "A Quiet Harbour Reopens\n"
    "By Ana Lopez\n\n"
    "The harbour of Port Ellis reopened on Monday after a storm closed it for two weeks. "
    "Fishing boats returned at dawn.\n\n"
    "The mayor said repairs cost 2 million dollars.\n\n"
    "This story originally appeared in The Coastal Times."
)

ESSAY = (
    "Why Rivers Move\n\n"
    "Rivers change course when sediment builds up in their beds, and floods carve new channels across "
    "the plain over many years.\n\n"
    "Tom Baker is a hydrologist at the University of Leeds and writes about water.\n"
)


def source(text: str, title: str) -> Source:
    return Source.from_text(text, title, "mem://" + title)


def values(src: Source) -> dict[str, str]:
    return {f.name: src.text[f.start : f.end] for f in document_fields(src)}


def test_front_matter_dates_byline_and_closing_publisher_are_found_at_their_offsets():
    src = source(BLOG, "A Quiet Harbour Reopens")
    assert values(src) == {
        "title": "A Quiet Harbour Reopens",
        "published": "March 3, 2021",
        "updated": "4 March 2021",
        "author": "Ana Lopez",
        "publisher": "The Coastal Times",
    }


def test_an_author_bio_at_the_end_gives_the_author_and_the_bio_sentence():
    src = source(ESSAY, "Why Rivers Move")
    found = values(src)
    assert found["author"] == "Tom Baker"
    assert found["author_bio"] == "Tom Baker is a hydrologist at the University of Leeds and writes about water."
    assert "published" not in found
    assert author_name(src) == "Tom Baker"


def test_the_shipped_article_states_its_dates_author_and_publisher(article_source):
    found = values(article_source)
    assert found["published"] == "06/25/2014"
    assert found["updated"] == "Aug 25, 2014"
    assert found["author"] == "Majid Rafizadeh"
    assert found["publisher"] == "Al Arabiya"


def test_a_text_without_front_matter_or_bio_states_nothing_but_its_title():
    src = source("rivers flow to the sea. they carry sand. nobody wrote this down.", "notes.txt")
    assert values(src) == {}
    assert document_card(src) is None


def test_every_card_value_maps_back_to_the_same_characters_of_the_source():
    src = source(BLOG, "A Quiet Harbour Reopens")
    card = document_card(src)
    assert card is not None
    for c_start, c_end, _ in card.slices:
        s_start, s_end = card.to_source(c_start, c_end)
        assert src.text[s_start:s_end] == card.text[c_start:c_end]


def test_a_card_span_is_clipped_to_its_value_and_a_span_on_template_words_maps_to_nothing():
    card = Card("s", "It was on 2021-01-02.", ((10, 20, 100),))
    assert card.to_source(3, 21) == (100, 110)  # "on 2021-01-02." -> the date only
    assert card.to_source(0, 5) is None


@given(st.text(max_size=400))
def test_fields_always_slice_the_source_text(text):
    src = source(text, text.strip().split("\n")[0][:40] if text.strip() else "t")
    for f in document_fields(src):
        assert 0 <= f.start < f.end <= len(text)


@pytest.mark.parametrize("question", [
    "Who wrote this piece?", "When was the story published?", "What is the headline?",
    "Who is the author?", "Where did the article first appear?", "What does the writer do for a living?",
])
def test_questions_about_the_document_itself_are_recognised(question):
    assert refers_to_document(question)


@pytest.mark.parametrize("question", [
    "Who does he report to?", "How many boats returned?", "What did the mayor say about the text messages?",
])
def test_questions_about_the_content_are_not(question):
    assert not refers_to_document(question)


def test_passages_holding_fields_are_labelled_for_retrieval():
    src = source(BLOG, "A Quiet Harbour Reopens")
    head = Passage(src.id, 0, 60, src.text[:60])
    body = Passage(src.id, 100, 140, src.text[100:140])
    assert "date published" in search_text(head, src)
    assert search_text(body, src) == f"{src.title}\n{body.text}"


def test_an_answer_read_on_the_card_is_cited_at_the_value_in_the_source():
    src = source(BLOG, "A Quiet Harbour Reopens")
    card = document_card(src)
    passage = Passage(src.id, 100, 140, src.text[100:140])
    value = "Ana Lopez"
    at = card.text.index(value)
    reading = Reading([Span(value, 5.0, 1, at, at + len(value))], no_answer_score=0.0)
    answer = build_answer("Who wrote it?", reading, [ScoredPassage(passage, 1.0, 0)], {src.id: src}, cards=[card])
    assert answer.text == value
    c = answer.citations[0]
    assert src.text[c.start : c.end] == value
    assert c.quote_start <= c.start and c.end <= c.quote_end


@pytest.mark.parametrize(("question", "read"), [
    ("What is the author's job?", "What is Tom Baker's job?"),
    ("Where does the profession of the writer lead him?", "Where does the profession of Tom Baker lead him?"),
    ("Who is the author?", "Who is the author?"),
    ("Who wrote it?", "Who wrote it?"),
])
def test_the_author_is_named_in_questions_about_their_attributes(question, read):
    from qa.metadata import name_the_author

    assert name_the_author(question, source(ESSAY, "Why Rivers Move")) == read
