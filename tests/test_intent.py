"""Whole-document questions: recognised by their intent words, asked of the document or of nothing; others are not."""

from __future__ import annotations

import pytest

from qa.intent import MAX_SENTENCES, SENTENCES, Request, whole_document_request


@pytest.mark.parametrize("question, kind", [
    # Summaries, as people type them.
    ("Summarize the article", "summary"),
    ("summarise this piece please", "summary"),
    ("Can you give me a quick summary of this article?", "summary"),
    ("Could you sum up the article?", "summary"),
    ("Sum it up", "summary"),
    ("Give me an overview", "summary"),
    ("What does this article say?", "summary"),
    ("Please summarize the text for me.", "summary"),
    # What it is about, the gist.
    ("What is the article about?", "gist"),
    ("What's this about?", "gist"),
    ("What's the story about?", "gist"),
    ("Give me the gist", "gist"),
    ("What is the gist of the story?", "gist"),
    ("TL;DR?", "gist"),
    ("In a nutshell, what is the article about?", "gist"),
    ("What is the main topic of the article?", "gist"),
    ("Tell me about this article", "gist"),
    # The main argument, the thesis.
    ("What is the author's main argument?", "argument"),
    ("What's the thesis?", "argument"),
    ("What is the main point of the article?", "argument"),
    ("What does the author argue?", "argument"),
    ("What is the author trying to say?", "argument"),
    ("What is the main idea of the piece?", "argument"),
    ("What is the article's main message?", "argument"),
    ("What is the central claim of the op-ed?", "argument"),
    ("Main argument?", "argument"),
    # The conclusion.
    ("What does the article conclude?", "conclusion"),
    ("What is the conclusion of the article?", "conclusion"),
    ("What's the bottom line?", "conclusion"),
    # Key points and takeaways.
    ("What are the key points?", "key_points"),
    ("What are the main takeaways?", "key_points"),
    ("What are the main points made in the article?", "key_points"),
    ("What are the article's key takeaways?", "key_points"),
    ("Key points?", "key_points"),
])
def test_a_question_about_the_whole_document_is_recognised(question, kind):
    request = whole_document_request(question)
    assert request == Request(kind, SENTENCES[kind])


@pytest.mark.parametrize("question", [
    "What did the article say about Suleimani?",  # about something in it: an ordinary question
    "What did the author say about Rouhani?",
    "What is ISIS?",
    "What is the Quds Force?",
    "Who wrote the article?",
    "When was the article published?",
    "What is the title of the article?",
    "What is the author's profession?",
    "Where is the author from?",
    "What is the conclusion of the nuclear talks?",  # the intent word, of something else
    "What is the main argument of the US?",
    "What is the message of Rouhani's remarks?",
    "What are the arguments for cooperation?",
    "What are the key facts about Suleimani?",
    "What is the US position on Iran?",
    "What is Iran's stance?",
    "Summarize Iran's role in Iraq",
    "What is the Iran deal about?",
    "What is his position?",  # a person's, not the document's
    "What does he argue?",
    "What is the point?",  # a vague noun needs "main", "key" ... or the document named
    "What is the subject?",
    "What is the capital of France?",
])
def test_an_ordinary_question_is_not_a_whole_document_question(question):
    assert whole_document_request(question) is None


def test_a_number_in_the_question_sets_how_many_sentences():
    assert whole_document_request("Summarize the article in three sentences") == Request("summary", 3)
    assert whole_document_request("What are the 3 main takeaways?") == Request("key_points", 3)
    assert whole_document_request("Give me 20 key points").sentences == MAX_SENTENCES


def test_a_main_argument_is_shorter_than_a_summary_and_key_points_longer():
    assert 1 <= SENTENCES["argument"] <= 2 and SENTENCES["conclusion"] <= 2
    assert 3 <= SENTENCES["gist"] <= SENTENCES["summary"] <= SENTENCES["key_points"] <= 5
