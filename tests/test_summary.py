"""Key sentences: the answer to a question about the whole article, each sentence cited, none from its byline,
bio or dateline; chosen by centrality, title, position and diversity."""

from __future__ import annotations

import numpy as np
import pytest

from qa import summary
from qa.metadata import document_fields
from qa.types import Source

# The article's key sentences, chosen by reading it: the situation, the cooperation, the shared interests, and
# what it will bring.
KEY_SENTENCES = [
    "two countries and enemies have shown great concern regarding their national interest in Iraq: the United States "
    "and Iran.",
    "Tehran and Washington are starting a groundbreaking military cooperation in order to halt the Sunni fighters.",
    "This is considered a dramatic turnaround for the two rival powers, who have had frozen diplomatic relationships "
    "for decades.",
    "In a rare occasion, the United States and the Islamic Republic have become two odd bedfellows.",
    "both Tehran and Washington share one common goal to serve their own national interests: a stable Iraq and "
    "keeping the oil to flow.",
    "In other words, the two enemies, the United States and the Islamic Republic, share significant national, "
    "strategic, and geopolitical interests in defending the Iraqi government and the status quo.",
    "the political and economic interests between the Islamic Republic, the United States and the government of Prime "
    "Minister Nouri al-Maliki seem to seamlessly align.",
    "Finally, the military cooperation between the Islamic Republic and United States will boost Iran's hegemonic "
    "power, domestically and regionally.",
]

WHOLE_ARTICLE_QUESTIONS = [
    "Summarize the article",
    "What is the article about?",
    "What is the author's main argument?",
    "What are the key points?",
    "What does the author conclude?",
    "Give me the gist of this piece",
    "TL;DR?",
]


def _key_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for sentence in KEY_SENTENCES:
        start = text.index(sentence)
        spans.append((start, start + len(sentence)))
    return spans


def _covers_a_key_sentence(citation, keys) -> bool:
    return any(citation.start < end and start < citation.end for start, end in keys)


# -- candidates ------------------------------------------------------------------------------------------------


def test_no_candidate_is_the_dateline_title_byline_bio_or_first_appeared_on(article_source):
    text = article_source.text
    fields = [(f.start, f.end) for f in document_fields(article_source)]
    assert {f.name for f in document_fields(article_source)} >= {"title", "published", "author", "author_bio",
                                                                  "publisher"}
    spans = summary.candidate_spans(article_source)
    assert spans and spans == sorted(spans)
    for start, end in spans:
        assert not any(start < f_end and f_start < end for f_start, f_end in fields), text[start:end]
    chosen = " ".join(text[s:e] for s, e in spans)
    for left_out in ("06/25/2014", "Majid Rafizadeh", "first appeared on", "The Enemy of My Enemy Is My Friend",
                     "What is the stance of the Islamic Republic?", "Military coordination between the two"):
        assert left_out not in chosen


def test_every_key_sentence_is_a_candidate(article_source):
    spans = summary.candidate_spans(article_source)
    for start, end in _key_spans(article_source.text):
        assert any(s <= start and end <= e for s, e in spans)


def test_a_source_with_nothing_but_front_matter_has_no_candidates():
    source = Source.from_text("06/25/2014\n\nA Title\n\nBy Ana Lopez\n", "A Title", "x.txt")
    assert summary.candidate_spans(source) == []


# -- scoring and selection ---------------------------------------------------------------------------------------


def _unit(rows) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_most_central_sentence_scores_highest_without_a_lead_prior():
    vectors = _unit([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    weights = summary.Weights(centrality=1.0, title=0.0, position=0.0)
    assert int(np.argmax(summary.scores(vectors, None, weights))) == 1


def test_the_lead_prior_favours_earlier_sentences():
    vectors = _unit([[1, 0], [1, 0], [1, 0]])
    s = summary.scores(vectors, None, summary.Weights(position=1.0))
    assert s[0] > s[1] > s[2]


def test_closeness_to_the_title_counts():
    vectors = _unit([[1, 0], [0, 1]])
    title = _unit([[0, 1]])[0]
    s = summary.scores(vectors, title, summary.Weights(centrality=0.0, title=1.0, position=0.0))
    assert s[1] > s[0]


def test_selection_skips_a_repeat_and_returns_document_order():
    vectors = _unit([[1, 0.1], [1, 0.11], [0.2, 1]])
    score = np.array([1.0, 0.99, 0.5])
    assert summary.select(vectors, score, 2, redundancy=0.0) == [0, 1]
    assert summary.select(vectors, score, 2, redundancy=1.0) == [0, 2]
    assert summary.select(vectors, score, 5) == [0, 1, 2]  # no more than there are


# -- on the shipped article, with the packaged embedder ----------------------------------------------------------


@pytest.fixture(scope="module")
def sentences(article_source, embedder):
    return summary.embed_sentences(article_source, embedder.encode)


def test_the_title_is_embedded_when_it_stands_in_the_text(sentences):
    assert sentences.title is not None and len(sentences.vectors) == len(sentences.spans)


@pytest.mark.parametrize("kind, n", [("summary", 4), ("key_points", 5), ("argument", 2), ("conclusion", 2)])
def test_key_sentences_are_n_candidates_in_document_order(sentences, kind, n):
    spans = summary.key_sentences(sentences, n, kind)
    assert len(spans) == n and spans == sorted(spans)
    assert set(spans) <= set(sentences.spans)


def test_a_conclusion_comes_from_the_last_third(sentences):
    spans = summary.key_sentences(sentences, 2, "conclusion")
    last_third = sentences.spans[(2 * len(sentences.spans)) // 3:]
    assert set(spans) <= set(last_third)


def test_the_answer_cites_each_sentence_and_lists_them_one_per_line(article_source, sentences):
    spans = summary.key_sentences(sentences, 3, "summary")
    answer = summary.key_sentence_answer("Summarize the article", article_source, spans)
    assert answer.kind == "key_sentences" and answer.score == 1.0
    assert answer.text.split("\n") == [article_source.text[s:e] for s, e in spans]
    for citation, (start, end) in zip(answer.citations, spans):
        assert (citation.start, citation.end) == (start, end)
        assert article_source.text[citation.quote_start:citation.quote_end] == citation.quote
        assert citation.quote == article_source.text[start:end]


# -- through the Assistant ---------------------------------------------------------------------------------------


class _NoReader:
    """Fails if read: a whole-document question is answered without the reader."""

    def read_many(self, items, top_k=None, exit_margin=None, screen=None):
        raise AssertionError("the reader was asked to read a whole-document question")


@pytest.fixture(scope="module")
def assistant(article_index, embedder):
    from qa.assistant import Assistant
    from qa.config import Settings

    return Assistant(article_index, embedder, _NoReader(), Settings())


@pytest.mark.parametrize("question", WHOLE_ARTICLE_QUESTIONS)
def test_a_whole_article_question_is_answered_with_cited_key_sentences(assistant, article_source, question):
    answer = assistant.ask(question)
    assert answer.kind == "key_sentences" and answer.text is not None
    assert 1 <= len(answer.citations) <= 5
    text = article_source.text
    fields = [(f.start, f.end) for f in document_fields(article_source)]
    for citation in answer.citations:
        assert text[citation.start:citation.end] == citation.quote
        assert not any(citation.start < f_end and f_start < citation.end for f_start, f_end in fields)
    keys = _key_spans(text)
    assert any(_covers_a_key_sentence(c, keys) for c in answer.citations), answer.text
    assert answer.to_dict()["kind"] == "key_sentences"


def test_a_summary_has_more_sentences_than_a_main_argument(assistant):
    assert len(assistant.ask("Summarize the article").citations) == 4
    assert len(assistant.ask("What is the author's main argument?").citations) == 2


def test_the_sentences_are_embedded_once_per_source(assistant, monkeypatch):
    assistant.ask("Summarize the article")
    monkeypatch.setattr(summary, "embed_sentences", lambda *a: pytest.fail("embedded again"))
    assert assistant.ask("What are the key points?").citations


def test_ordinary_and_whole_article_questions_in_one_batch_keep_their_order(article_index, embedder):
    from qa.assistant import Assistant
    from qa.config import Settings
    from qa.reader import Reading

    class Abstains:
        def read_many(self, items, top_k=None, exit_margin=None, screen=None):
            return [Reading([], 0.0) for _ in items]

    batch = Assistant(article_index, embedder, Abstains(), Settings())
    answers = batch.ask_many(["Who is ISIS?", "Summarize the article", "What is the capital of France?"])
    assert [a.kind for a in answers] == ["span", "key_sentences", "span"]
    assert answers[1].question == "Summarize the article"


def test_in_an_index_of_several_sources_the_chat_s_source_is_summarised_and_named(article_source, embedder):
    from qa import building
    from qa.assistant import Assistant
    from qa.config import Settings

    other = Source.from_text(
        "Glaciers in the Alps lost a record share of their ice this summer, scientists in Switzerland said. "
        "The melt was driven by a hot summer and little winter snow, which left the ice exposed for months. "
        "Researchers warned that most Alpine glaciers could disappear by the end of the century if warming goes on.",
        "Alpine glaciers melt", "glaciers.txt")
    index = building.build([article_source, other], embedder)
    assistant = Assistant(index, embedder, _NoReader(), Settings())
    answer = assistant.ask("Summarize the article", history=[{"question": "How much ice did the glaciers lose?",
                                                              "answer": "a record share of their ice"}])
    assert {c.source_id for c in answer.citations} == {other.id}
    assert any("Alpine glaciers melt" in n and "this chat is about" in n for n in answer.notices)
    answer = assistant.ask("Summarize the article", history=["Who is the commander of the Quds Force?"])
    assert {c.source_id for c in answer.citations} == {article_source.id}
