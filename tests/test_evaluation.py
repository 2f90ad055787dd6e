"""The SQuAD metrics, percentiles, question files and the summary of an evaluation run."""

from __future__ import annotations

import json

import pytest

from qa.evaluation import (exact_match, f1_score, format_report, normalize_answer, percentile, read_rows, score,
                           summarize)

# ------------------------------------------------------------------------------------------------
# official SQuAD metric


@pytest.mark.parametrize("raw, normal", [
    ("The Cat", "cat"),
    ("a cat, an owl & the dog!", "cat owl dog"),
    ("  Qassem   Suleimani.  ", "qassem suleimani"),
    ("Iran's", "irans"),
    ("the", ""),
    ("Theatre", "theatre"),  # articles only as whole words
    ("U.S.", "us"),
])
def test_normalisation_removes_case_punctuation_articles_and_extra_whitespace(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match("The Quds Force.", "quds force") == 1.0
    assert exact_match("Quds Force", "Quds") == 0.0


def test_f1_of_a_partial_answer_is_computed_from_shared_tokens():
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]
    # precision 2/2, recall 2/3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_only_as_often_as_both_sides_have_them():
    # [cat, cat, cat] vs [cat, sat]: one shared token; precision 1/3, recall 1/2, F1 = 0.4
    assert f1_score("cat cat cat", "cat sat") == pytest.approx(0.4)


def test_f1_of_disjoint_answers_is_zero_and_of_identical_answers_is_one():
    assert f1_score("Tehran", "Washington") == 0.0
    assert f1_score("Ayatollah Ali Khamenei", "ayatollah ali khamenei") == 1.0


def test_f1_of_answers_that_normalise_to_nothing():
    assert f1_score("the", "a") == 1.0
    assert f1_score("the", "Tehran") == 0.0


def test_a_prediction_takes_its_best_score_over_the_gold_answers():
    assert score("Khamenei", ["Ayatollah Ali Khamenei", "Khamenei"]) == (1.0, 1.0)
    em, f1 = score("the cat sat", ["dog", "a cat sat down"])
    assert em == 0.0 and f1 == pytest.approx(0.8)


def test_an_unanswerable_question_scores_one_for_abstaining_and_zero_for_answering():
    assert score(None, []) == (1.0, 1.0)
    assert score("Tehran", []) == (0.0, 0.0)


def test_abstaining_on_an_answerable_question_scores_zero():
    assert score(None, ["Qassem Suleimani"]) == (0.0, 0.0)


# ------------------------------------------------------------------------------------------------
# percentile


def test_percentile_interpolates_linearly_between_ranks():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # order does not matter
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)  # position 3.8 between 4 and 5
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)


def test_percentile_of_one_value_is_that_value_and_of_none_is_zero():
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0


# ------------------------------------------------------------------------------------------------
# question files


def test_read_rows_reads_questions_and_fills_in_id_and_history(tmp_path):
    file = tmp_path / "dev.jsonl"
    file.write_text(
        json.dumps({"question": "Who commands the Quds Force?", "answers": ["Qassem Suleimani"]}) + "\n\n"
        + json.dumps({"id": "q2", "question": "Who does he report to?", "answers": ["Khamenei"],
                      "history": [["Who commands the Quds Force?", "Qassem Suleimani"]]}) + "\n"
        + json.dumps({"question": "What is the capital of France?", "answers": []}) + "\n",
        encoding="utf-8")
    rows = read_rows(file)
    assert [r["id"] for r in rows] == ["1", "q2", "4"]  # ids default to the line number
    assert rows[0]["history"] == [] and rows[1]["history"]
    assert rows[2]["answers"] == []


def test_read_rows_rejects_a_row_without_answers(tmp_path):
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps({"question": "Who?", "answers": ["x"]}) + "\n"
                    + json.dumps({"question": "What?"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: a row needs 'question' and 'answers'"):
        read_rows(file)


# ------------------------------------------------------------------------------------------------
# summary


def _result(id, gold, prediction, em, f1, recall, cited, seconds, follow_up=False):
    return {"id": id, "question": f"question {id}", "history": [], "gold": gold, "prediction": prediction,
            "score": 0.5, "em": em, "f1": f1, "recall": recall, "cited": cited, "seconds": seconds,
            "follow_up": follow_up, "query": f"question {id}"}


RESULTS = [
    _result("right", ["Qassem Suleimani"], "Qassem Suleimani", 1.0, 1.0, True, True, 0.1),
    _result("partial", ["Ayatollah Ali Khamenei"], "Ali", 0.0, 0.5, False, False, 0.2, follow_up=True),
    _result("abstained", ["500"], None, 0.0, 0.0, True, None, 0.3),
    _result("no-answer-ok", [], None, 1.0, 1.0, None, None, 0.4),
    _result("no-answer-wrong", [], "Tehran", 0.0, 0.0, None, False, 0.5),
]


def test_summarize_counts_questions_and_averages_em_and_f1():
    report = summarize(RESULTS, k=3)
    assert (report["questions"], report["answerable"], report["unanswerable"]) == (5, 3, 2)
    assert report["em"] == pytest.approx(40.0)
    assert report["f1"] == pytest.approx(50.0)
    assert report["answerable_em"] == pytest.approx(100 / 3)
    assert report["answerable_f1"] == pytest.approx(50.0)
    assert report["follow_up_f1"] == pytest.approx(50.0)


def test_summarize_measures_retrieval_recall_over_answerable_questions():
    assert summarize(RESULTS, k=3)["recall@3"] == pytest.approx(200 / 3)
    assert "recall@5" in summarize(RESULTS, k=5)


def test_summarize_measures_citation_accuracy_over_cited_answers():
    assert summarize(RESULTS, k=3)["citation_accuracy"] == pytest.approx(100 / 3)


def test_summarize_measures_abstention_precision_and_recall():
    report = summarize(RESULTS, k=3)
    assert report["abstention_precision"] == pytest.approx(50.0)  # 1 of 2 abstentions was on an unanswerable
    assert report["abstention_recall"] == pytest.approx(50.0)  # 1 of 2 unanswerables was abstained on
    assert report["answered_answerable"] == pytest.approx(200 / 3)


def test_abstention_precision_is_perfect_when_the_engine_never_abstains():
    assert summarize(RESULTS[:2], k=3)["abstention_precision"] == 100.0


def test_summarize_reports_latency_percentiles_in_milliseconds():
    report = summarize(RESULTS, k=3)
    assert report["latency_p50_ms"] == pytest.approx(300.0)
    assert report["latency_p95_ms"] == pytest.approx(480.0)


def test_summarize_lists_the_misses():
    misses = summarize(RESULTS, k=3)["misses"]
    assert [m["id"] for m in misses] == ["partial", "abstained", "no-answer-wrong"]


def test_summarize_of_no_results_is_all_zero():
    report = summarize([], k=3)
    assert report["questions"] == 0 and report["em"] == 0.0 and report["misses"] == []


def test_summarize_counts_the_answers_of_each_reader_of_a_cascade():
    results = [{**r, "reader": name} for r, name in zip(RESULTS, ["minilm", "mpnet", "minilm", "minilm", "mpnet"])]
    report = summarize(results, k=3)
    assert report["answered_by"] == {"minilm": 3, "mpnet": 2}
    assert "answered by minilm 3, mpnet 2" in format_report(report)
    assert "answered by" not in format_report(summarize(RESULTS, k=3))
