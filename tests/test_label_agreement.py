"""bench/label_agreement.py: how often a reader's best span is the gold one, and how peaked its start scores are.

A reader's records are the teacher's format (:func:`qa.training.teacher.score_examples`): per example its best
start and end characters, best first, with their logits and the no-answer logits.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import bench_module


def _bench():
    return bench_module("label_agreement")


def _examples():
    from qa.training.data import Example

    context = "Qassem Suleimani leads the Quds Force of Iran."
    return [Example("a", "Who leads the Quds Force?", context, "Qassem Suleimani", 0),
            Example("b", "What does he lead?", context, "the Quds Force", 23),
            Example("c", "Of which country?", context, "Iran", 41)]


def _records(starts, ends, start_logits):
    """Records with the given best start/end characters (a second candidate each, worse)."""
    n = len(starts)
    return {"start_char": np.asarray([[s, 99] for s in starts], dtype=np.int32),
            "end_char": np.asarray([[e, 99] for e in ends], dtype=np.int32),
            "start_logit": np.asarray(start_logits, dtype=np.float16),
            "null_start": np.zeros(n, dtype=np.float32)}


def test_agreement_counts_a_best_start_and_end_equal_to_the_gold_answers_characters():
    bench = _bench()
    # a: both ends right; b: "Quds Force" without "the" (start wrong, end right); c: "Iran." (end one too far)
    records = _records(starts=[0, 27, 41], ends=[16, 37, 46], start_logits=[[5, 1]] * 3)
    result = bench.agreement(records, _examples())
    assert result == {"start_pct": pytest.approx(66.7), "end_pct": pytest.approx(66.7),
                      "both_pct": pytest.approx(33.3)}


def test_peakedness_is_the_mean_probability_of_the_best_start_and_falls_as_the_temperature_rises():
    bench = _bench()
    records = _records(starts=[0, 23, 41], ends=[16, 37, 45], start_logits=[[4.0, 2.0]] * 3)
    # over the no-answer logit 0 and the two kept starts 4 and 2
    expected_t1 = np.exp(4.0) / (1 + np.exp(4.0) + np.exp(2.0))
    expected_t2 = np.exp(2.0) / (1 + np.exp(2.0) + np.exp(1.0))
    assert bench.peakedness(records, 1.0) == pytest.approx(expected_t1, abs=1e-3)
    assert bench.peakedness(records, 2.0) == pytest.approx(expected_t2, abs=1e-3)
    assert bench.peakedness(records, 2.0) < bench.peakedness(records, 1.0)


def test_disagreements_list_the_examples_whose_best_start_is_not_the_gold_one_with_the_span_read():
    bench = _bench()
    examples = _examples()
    records = _records(starts=[0, 27, 41], ends=[16, 37, 46], start_logits=[[5, 1]] * 3)
    [(example, start, end)] = bench.disagreements(records, examples)
    assert example.qid == "b"
    assert example.context[start:end] == "Quds Force"
