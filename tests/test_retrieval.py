"""Retrieval: dense, BM25 and their fusion find the passage that answers a question, however it is worded."""

from __future__ import annotations

import pytest

from qa.retrieval import Retriever, fuse, rrf, tokenize

# Questions written in other words than the article's (not the dev set's questions), with a phrase of the
# passage that answers them.
PARAPHRASED = [
    ("Who leads Iran's elite foreign operations unit?", "Qassem Suleimani, the commander of the Quds Force"),
    ("How many Iranian troops were reportedly dispatched to Iraq?", "approximately 500 forces"),
    ("When did the American army leave Iraq?", "withdrew its forces at the end of 2011"),
    ("Which province did the Revolutionary Guards go to?", "Diyala province"),
    ("Who sits at the top of Iran's chain of command, above the Quds commander?", "Ayatollah Ali Khamenei"),
    ("On which site did the article originally run?", "This post first appeared on Al Arabiya"),
    ("What date is on the piece?", "06/25/2014"),
]


@pytest.fixture(scope="module")
def retriever(article_index, embedder) -> Retriever:
    return Retriever(article_index, embedder)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_returns_k_distinct_passages_best_first(retriever, mode):
    hits = retriever.search(["Who commands the Quds Force?"], 3, mode=mode)[0]
    assert len(hits) == 3
    assert len({h.position for h in hits}) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert retriever.index.passages[h.position] == h.passage


@pytest.mark.parametrize(("question", "phrase"), PARAPHRASED)
def test_hybrid_retrieval_finds_the_answering_passage_of_a_paraphrased_question_in_the_top_3(retriever, question,
                                                                                             phrase):
    hits = retriever.search([question], 3)[0]
    assert any(phrase in h.passage.text for h in hits), [h.passage.text[:80] for h in hits]


def test_dense_retrieval_matches_meaning_without_shared_words(retriever):
    # No content word of the question is in the answering sentence ("The Obama administration withdrew its forces
    # at the end of 2011").
    hits = retriever.search(["When did American soldiers pull out?"], 3, mode="dense")[0]
    assert "withdrew its forces at the end of 2011" in hits[0].passage.text


def test_bm25_matches_inflected_forms_through_stemming():
    assert tokenize("published publishing") == tokenize("publish publishes")
    assert "the" not in tokenize("the commander of the force")


def test_a_question_of_stop_words_only_finds_nothing_by_bm25_but_dense_still_answers(retriever):
    assert retriever.search(["what is the"], 3, mode="bm25")[0] == []
    assert len(retriever.search(["what is the"], 3, mode="dense")[0]) == 3


def test_rrf_rewards_passages_ranked_well_by_both_lists():
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    assert max(fused, key=fused.get) == 1
    assert fused[3] > fused[2] and fused[4] < fused[3]
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)


# Dense retrieval misses the rare name that BM25 ranks first (id 9); ids 1-4 sit high in both lists.
DENSE = [1, 2, 3, 4, 5]
SPARSE = [9, 1, 2, 3, 4]


def test_plain_rrf_can_drop_the_passage_one_retriever_ranks_first():
    assert [i for i, _ in fuse([DENSE, SPARSE], k=3)] == [1, 2, 3]


def test_fusion_heads_keep_each_retrievers_best_passage_after_the_fused_best():
    kept = fuse([DENSE, SPARSE], k=3, heads=1)
    assert [i for i, _ in kept] == [1, 2, 9]  # 9 kept; the rest by fused score, best fused score first
    assert dict(kept)[9] == pytest.approx(1 / 61)


def test_with_one_place_fusion_heads_change_nothing():
    assert fuse([DENSE, SPARSE], k=1, heads=2) == fuse([DENSE, SPARSE], k=1)


def test_fusion_heads_never_return_more_than_k_or_a_passage_twice():
    kept = [i for i, _ in fuse([[1, 2, 3], [4, 5, 6]], k=3, heads=3)]
    assert len(kept) == 3 and len(set(kept)) == 3
    assert kept[0] in (1, 4)


def test_a_negative_fusion_heads_setting_is_refused():
    from qa.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="fusion_heads"):
        Settings(fusion_heads=-1)


def test_batched_queries_get_the_same_passages_as_single_ones(retriever):
    questions = ["Who commands the Quds Force?", "When did the US withdraw?", "What is ISIS?"]
    batched = retriever.search(questions, 3)
    for q, hits in zip(questions, batched):
        assert [h.position for h in hits] == [h.position for h in retriever.search([q], 3)[0]]
